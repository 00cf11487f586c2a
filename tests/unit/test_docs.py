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


def test_every_row_names_its_handler_typed_for_its_event():
    # A handler takes the event its row matches (or a union with it); only the handlers shared
    # by every kind of fact (nothing, late_call_event) take any Event.
    import types
    import typing

    from firmware.events import Event

    for row in TRANSITIONS:
        hint = typing.get_type_hints(row.handler)["event"]
        accepted = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        assert row.event in accepted or accepted == (Event,), (row.handler.__name__, hint)
        assert row.handler.__name__ in ("nothing", "late_call_event") or accepted != (Event,)
