"""Run long engine work off the GUI thread, with progress and Cancel.

`Task` runs `function(*args, progress=Progress)` in a Python thread. The thread never
touches Qt: it posts its progress and its outcome to the GUI thread's queue
(`gui.gui_thread`), and the Task's signals are emitted there, in the GUI thread. The
function never touches widgets either.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Signal

from engine.errors import WeightsmithError
from engine.progress import Cancelled, Progress

from .gui_thread import gui_thread_queue


class Task(QObject):
    """One piece of background work.

    Signals (all emitted in the GUI thread)
    -------
    progressed(float, str) : fraction done and a short text
    succeeded(object) : the function's result
    failed(str) : one line that says what went wrong
    cancelled() : the work stopped at a safe point after `cancel()`
    done() : after any of the three above; the thread has nothing left to deliver
    """

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()

    def __init__(self, function: Callable[..., Any], *args: Any, name: str = "task",
                 parent: QObject | None = None, **kwargs: Any) -> None:
        super().__init__(parent)
        self.name = name
        self._function = function
        self._args = args
        self._kwargs = kwargs
        self._queue = gui_thread_queue()
        self.progress = Progress(
            lambda fraction, text: self._queue.post(self._deliver_progress, fraction, text))
        self._thread: threading.Thread | None = None
        self._finished = False
        self.result: Any = None
        self.error: str | None = None

    def start(self) -> None:
        """Start the work in a daemon thread (call in the GUI thread)."""
        self._queue.hold()
        self._thread = threading.Thread(target=self._run, name=f"weightsmith-{self.name}",
                                        daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the work to stop at its next safe point."""
        self.progress.cancel()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread; return True when it has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ worker thread
    def _run(self) -> None:
        try:
            result = self._function(*self._args, progress=self.progress, **self._kwargs)
        except Cancelled:
            outcome, value = "cancelled", None
        except WeightsmithError as error:
            outcome, value = "failed", str(error)
        except MemoryError:
            outcome, value = "failed", f"{self.name}: out of memory"
        except Exception as error:  # never let a worker's surprise crash the app
            first = str(error).splitlines()[0] if str(error) else ""
            traceback.print_exc()
            outcome, value = "failed", f"{self.name}: unexpected {type(error).__name__}: {first}"
        else:
            outcome, value = "succeeded", result
        # Readable as soon as `wait()` returns (a window closing reads them before the
        # signals are delivered); plain attributes, no Qt.
        if outcome == "succeeded":
            self.result = value
        elif outcome == "failed":
            self.error = value
        self._queue.post(self._deliver_outcome, outcome, value)

    # ------------------------------------------------------------------ GUI thread
    def _deliver_progress(self, fraction: float, text: str) -> None:
        if not self._finished and shiboken6.isValid(self):
            self.progressed.emit(fraction, text)

    def _deliver_outcome(self, outcome: str, value: Any) -> None:
        self._finished = True
        try:
            if not shiboken6.isValid(self):
                return  # deleted with its parent while it ran: nobody listens any more
            if outcome == "succeeded":
                self.succeeded.emit(value)
            elif outcome == "failed":
                self.failed.emit(value)
            else:
                self.cancelled.emit()
            self.done.emit()
        finally:
            self._queue.release()
