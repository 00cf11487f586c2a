"""The Odoo side of the phone: JSON-RPC client, sync loop, local store and outbox."""
