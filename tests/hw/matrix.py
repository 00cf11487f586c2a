"""A switch matrix for gpiozero's MockFactory: the keys a test holds down join drive and sense
pins, as the real switches do.

gpiozero's `MockConnectedPin` links one pin to one pin; a keypad needs each sense (column) pin to
read low while any held key joins it to a drive (row) pin that is an output driven low. The matrix
also records shorts: two held keys in one column whose rows are both outputs at different levels,
which on real hardware is current through the switches and a wrong reading.
"""

from __future__ import annotations

from gpiozero.pins.mock import MockFactory, MockPin


class SensePin(MockPin):
    def __init__(self, factory: MockFactory, info: object, matrix: Matrix) -> None:
        super().__init__(factory, info)
        self.matrix = matrix

    def _get_state(self) -> bool:
        if self._function == "input":
            level = self.matrix.level(self)
            if level is not None:
                return level
        return bool(self._state)


class Matrix:
    """`rows`/`cols` are BCM pins; `layout` the key labels, row by row."""

    def __init__(self, factory: MockFactory, rows: list[int], cols: list[int],
                 layout: tuple[str, ...], drive: str = "rows") -> None:
        self.factory = factory
        self.layout = layout
        self.drive_pins, self.sense_pins = (rows, cols) if drive == "rows" else (cols, rows)
        self.where: dict[str, tuple[int, int]] = {}  # key -> (drive pin, sense pin)
        for r, row in enumerate(layout):
            for c, key in enumerate(row):
                pair = (rows[r], cols[c]) if drive == "rows" else (cols[c], rows[r])
                self.where[key] = pair
        self.sense = {pin: factory.pin(pin, pin_class=SensePin, matrix=self)
                      for pin in self.sense_pins}
        self.held: set[str] = set()
        self.shorts = 0

    def press(self, *keys: str) -> None:
        self.held.update(keys)

    def release(self, *keys: str) -> None:
        self.held.difference_update(keys or set(self.held))

    def level(self, sense: SensePin) -> bool | None:
        """What a sense pin reads through the held switches: False when a driven-low drive pin
        reaches it, None when no output reaches it (the pull decides)."""
        driving = []
        for key in self.held:
            drive_pin, sense_pin = self.where[key]
            if self.sense[sense_pin] is not sense:
                continue
            pin = self.factory.pin(drive_pin)
            if pin.function == "output":
                driving.append(bool(pin.state))
        if len(set(driving)) > 1:
            self.shorts += 1
        if not driving:
            return None
        return min(driving)  # a low output wins (and a mixed one is a short, counted above)


class ContactPin(MockPin):
    """A pin with a switch to ground on it: while `closed`, it reads low whatever its pull is
    (MockPin alone lets a pull-up set after `drive_low()` win, which a real contact does not)."""

    closed = False

    def _get_state(self) -> bool:
        return False if self.closed else bool(self._state)
