"""Desk phone firmware: a Raspberry Pi SIP desk phone for offices that run Odoo."""

__version__ = "0.1.0"
