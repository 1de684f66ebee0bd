"""A spin box for positive numbers that span decades (a learning rate: 3e-4, 0.001, 0.1)."""

from __future__ import annotations

import math

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QWidget

#: the mantissas the arrows and the wheel step through, per decade
STEPS = (1.0, 2.0, 5.0)


def step_value(value: float, steps: int) -> float:
    """The value `steps` places away on the 1, 2, 5 ladder (between two rungs, the next
    rung in the direction of the steps counts as the first)."""
    if value <= 0 or not math.isfinite(value):
        return value
    exponent = math.floor(math.log10(value))
    rungs = [mantissa * 10.0 ** exponent for mantissa in STEPS]
    position = max(i for i, rung in enumerate(rungs) if rung <= value * (1 + 1e-9))
    on_rung = math.isclose(rungs[position], value, rel_tol=1e-9)
    if steps > 0 and not on_rung:
        steps -= 1
        position += 1
    elif steps < 0 and not on_rung:
        steps += 1
    position += steps
    decade, index = divmod(position, len(STEPS))
    return float(f"{STEPS[index] * 10.0 ** (exponent + decade):.12g}")


class LogSpinBox(QDoubleSpinBox):
    """Type any positive number (1e-4, 0.0003); the arrows and wheel step 1, 2, 5 per decade.

    The text is the value in its shortest form (`0.001`, `3e-05`), never padded with
    zeros, so the box stays narrow and readable.
    """

    def __init__(self, value: float, minimum: float, maximum: float,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(15)  # the value keeps what was typed; the text is short anyway
        self.setRange(minimum, maximum)
        self.setValue(value)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, position: int) -> object:
        stripped = text.strip()
        try:
            value = float(stripped)
        except ValueError:
            # "1e-" or "." on the way to a number
            partial = stripped == "" or stripped[-1] in "eE.-+"
            state = QValidator.State.Intermediate if partial else QValidator.State.Invalid
            return state, text, position
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, position
        return QValidator.State.Intermediate, text, position

    def stepBy(self, steps: int) -> None:
        self.setValue(min(max(step_value(self.value(), steps), self.minimum()), self.maximum()))
