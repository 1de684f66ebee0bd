"""Plot computations, one current job per kind, small ones at once and big ones off the GUI thread.

A new job of a kind supersedes the previous one: the old Task is asked to cancel and
whatever it still delivers is ignored, so a quick run of selections only ever draws
the last one. Results are always delivered in the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.errors import WeightsmithError
from gui.workers import Task

Done = Callable[[Any], None]
Failed = Callable[[str], None]

#: seconds `shutdown` waits for each running job to stop
SHUTDOWN_WAIT = 5.0


class Jobs(QObject):
    """Run plot computations by kind ("histogram", "heatmap", ...).

    Signals
    -------
    busy_changed(bool) : whether any background job is running
    progressed(float, str) : progress of the latest background job
    """

    busy_changed = Signal(bool)
    progressed = Signal(float, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._current: dict[str, tuple[Task, Done, Failed]] = {}
        #: every Task whose `done` has not arrived yet, current or superseded. Tasks
        #: have no Qt parent, so closing the panel cannot delete one under its thread.
        self._live: set[Task] = set()

    def run(self, kind: str, function: Callable[..., Any], done: Done, failed: Failed, *,
            background: bool) -> None:
        """Compute `function(progress=...)` and hand its result to `done` (or an error line
        to `failed`), in the GUI thread; supersede the running job of `kind`."""
        self.cancel(kind)
        if not background:
            try:
                result = function(progress=None)
            except (WeightsmithError, ValueError, RuntimeError, MemoryError) as error:
                failed(_one_line(error))
                return
            done(result)
            return
        task = Task(function, name=kind)
        self._current[kind] = (task, done, failed)
        self._live.add(task)
        task.succeeded.connect(self._on_succeeded)
        task.failed.connect(self._on_failed)
        task.progressed.connect(self._on_progressed)
        task.done.connect(self._on_done)
        was_busy = self.busy
        task.start()
        if not was_busy:
            self.busy_changed.emit(True)

    def cancel(self, kind: str) -> None:
        """Stop caring about the job of `kind`; ask it to stop if it runs."""
        entry = self._current.pop(kind, None)
        if entry is not None:
            entry[0].cancel()

    def cancel_all(self) -> None:
        """Supersede every job."""
        for kind in list(self._current):
            self.cancel(kind)

    def running(self, kind: str) -> bool:
        """Whether a job of `kind` is still to deliver."""
        return kind in self._current

    @property
    def busy(self) -> bool:
        return bool(self._current)

    def shutdown(self) -> None:
        """Cancel every job and wait for their threads to end (for close)."""
        self.cancel_all()
        for task in list(self._live):
            task.wait(SHUTDOWN_WAIT)

    # ------------------------------------------------------------------ task signals
    def _entry(self) -> tuple[str, Done, Failed] | None:
        task = self.sender()
        for kind, (current, done, failed) in self._current.items():
            if current is task:
                return kind, done, failed
        return None  # superseded: its result no longer matters

    def _on_succeeded(self, result: Any) -> None:
        entry = self._entry()
        if entry is not None:
            del self._current[entry[0]]
            entry[1](result)

    def _on_failed(self, message: str) -> None:
        entry = self._entry()
        if entry is not None:
            del self._current[entry[0]]
            entry[2](message)

    def _on_progressed(self, fraction: float, text: str) -> None:
        if self._entry() is not None:
            self.progressed.emit(fraction, text)

    def _on_done(self) -> None:
        task = self.sender()
        entry = self._entry()
        if entry is not None:  # ended without result: cancelled
            del self._current[entry[0]]
        if task in self._live:
            self._live.discard(task)  # type: ignore[arg-type]
            task.deleteLater()
        if not self.busy:
            self.busy_changed.emit(False)


def _one_line(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "out of memory"
    return str(error).splitlines()[0] if str(error) else type(error).__name__
