"""Progress reporting and cooperative cancellation for long engine work, without Qt.

Long functions (open, save, statistics, training) take an optional `Progress`; they
call `progress.update(fraction, text)` at safe points, which raises `Cancelled` once
`cancel()` was called from another thread. The GUI wires `update` to a progress bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import WeightsmithError


class Cancelled(WeightsmithError):
    """The user cancelled the operation; whatever it was doing was left unchanged."""

    def __init__(self, what: str = "operation") -> None:
        super().__init__(f"{what} cancelled")


class Progress:
    """A progress sink with a cancel flag, safe to share between threads.

    Parameters
    ----------
    callback : called with (fraction in [0, 1], text) from the working thread
    """

    def __init__(self, callback: Callable[[float, str], None] | None = None) -> None:
        self._callback = callback
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next safe point."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise `Cancelled` if cancellation was asked for."""
        if self._cancel.is_set():
            raise Cancelled()

    def update(self, fraction: float, text: str = "") -> None:
        """Report progress; raise `Cancelled` if cancellation was asked for."""
        self.check()
        if self._callback is not None:
            self._callback(min(max(fraction, 0.0), 1.0), text)


def report(progress: Progress | None, fraction: float, text: str = "") -> None:
    """`progress.update` when a Progress was given; nothing otherwise."""
    if progress is not None:
        progress.update(fraction, text)
