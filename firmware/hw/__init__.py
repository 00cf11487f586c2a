"""Hardware drivers: they turn pins, panels and sound cards into facts for the Phone."""
