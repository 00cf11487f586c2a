"""Test helpers for the pure Phone: a clock the test moves, and a driver that feeds events and
fires the timers the Phone started, the way the daemon would."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from firmware.events import (
    Action,
    CallAnswered,
    CallProgress,
    Event,
    HookLifted,
    HookReplaced,
    IncomingCall,
    KeyPressed,
    PlaceCall,
    QueueEntry,
    RegistrationChanged,
    StartTimer,
    TimerFired,
)
from firmware.phone import Phone, PhoneState, Settings

T0 = 1795867200.0  # 2026-11-28 09:20:00 UTC


@dataclass
class FakeClock:
    mono: float = 1000.0
    wall: float = T0

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def utc() -> None:
    """Screens show local time; tests pin it to UTC so golden images do not depend on the TZ."""
    os.environ["TZ"] = "UTC"
    time.tzset()


@dataclass
class Driver:
    """Feeds a strict Phone (an undeclared transition raises) and keeps every action."""

    settings: Settings = field(default_factory=lambda: Settings(
        name="Alice Martin", extension="101", region="BE", version="0.1.0"))
    clock: FakeClock = field(default_factory=FakeClock)
    actions: list[Action] = field(default_factory=list)
    timers: dict[str, tuple[float, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.phone = Phone(self.settings, self.clock, strict=True)

    @property
    def state(self) -> PhoneState:
        return self.phone.state

    def feed(self, *events: Event) -> list[Action]:
        out: list[Action] = []
        for event in events:
            _, actions = self.phone.handle(event)
            for action in actions:
                if isinstance(action, StartTimer):
                    self.timers[action.name] = (self.clock.mono + action.seconds, action.token)
            out.extend(actions)
        self.actions.extend(out)
        return out

    def keys(self, keys: str, long: bool = False) -> list[Action]:
        events: list[Event] = []
        for k in keys:
            events.append(KeyPressed("0", long=True) if k == "+" else KeyPressed(k, long=long))
        return self.feed(*events)

    def lift(self) -> list[Action]:
        return self.feed(HookLifted())

    def replace(self) -> list[Action]:
        return self.feed(HookReplaced())

    def elapse(self, seconds: float) -> list[Action]:
        """Move the clock on and fire, in order, every timer that is due and still live."""
        end = self.clock.mono + seconds
        out: list[Action] = []
        while True:
            live = dict(self.phone.state.timers)
            due = sorted((at, name, token) for name, (at, token) in self.timers.items()
                         if at <= end and live.get(name) == token)
            if not due:
                break
            at, name, token = due[0]
            self.clock.mono = max(self.clock.mono, at)
            del self.timers[name]
            out.extend(self.feed(TimerFired(name, token)))
        self.clock.advance(end - self.clock.mono)
        return out

    def registered(self) -> Driver:
        self.feed(RegistrationChanged("registered"))
        return self

    def of(self, kind: type[Action]) -> list[Action]:
        return [a for a in self.actions if isinstance(a, kind)]

    def last_call_id(self) -> str:
        placed = self.of(PlaceCall)
        assert placed, "no call was placed"
        return placed[-1].call_id  # type: ignore[attr-defined]

    def connect_outgoing(self) -> str:
        call_id = self.last_call_id()
        self.feed(CallProgress(call_id), CallAnswered(call_id))
        return call_id

    def ring(self, call_id: str = "in-1", remote: str = "+32470123456",
             name: str | None = None) -> list[Action]:
        return self.feed(IncomingCall(call_id, remote, name))


def queue_entries() -> tuple[QueueEntry, ...]:
    return (
        QueueEntry(7, "Zoë Dupont", "+32470123456", "Follow up on the quote", "crm.lead", 31,
                   "2026-11-28", False, 51, "Office fit-out"),
        QueueEntry(3, "Brasserie De Koning", "+3222222222", "Renewal", "helpdesk.ticket", 12,
                   "2026-11-25", True, 52, "Printer jammed again"),
        QueueEntry(9, "Acme Corp", "+33142278186", "", "project.task", 4, "2026-11-28",
                   False, None, "Install router"),
    )
