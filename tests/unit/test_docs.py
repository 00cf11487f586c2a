"""The generated documents stay in step with the code they describe."""

from __future__ import annotations

from pathlib import Path

from firmware.phone import MODES, TRANSITIONS
from firmware.ui import diagram

ROOT = Path(__file__).resolve().parents[2]


def test_state_diagram_is_generated_from_the_current_table():
    committed = (ROOT / "docs" / "state-diagram.md").read_text()
    assert committed == diagram.document(), (
        "docs/state-diagram.md is stale: python -m firmware.ui.diagram > docs/state-diagram.md")


def test_every_mode_is_reachable_and_handles_keys_or_hook():
    reached = {"idle"}
    for row in TRANSITIONS:
        reached.update(t for t in row.targets if t in MODES)
    assert reached == set(MODES)
    from firmware.events import KeyPressed

    for mode in MODES:
        assert any(mode in row.modes and row.event is KeyPressed for row in TRANSITIONS), mode
