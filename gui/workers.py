"""Run long engine work off the GUI thread, with progress and Cancel.

`Task` runs `function(*args, progress=Progress)` in a Python thread and reports back
through Qt signals, which Qt delivers in the GUI thread (queued connections, since
the Task object lives in the GUI thread). The function never touches widgets.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.errors import WeightsmithError
from engine.progress import Cancelled, Progress


class Task(QObject):
    """One piece of background work.

    Signals
    -------
    progressed(float, str) : fraction done and a short text
    succeeded(object) : the function's result
    failed(str) : one line that says what went wrong
    cancelled() : the work stopped at a safe point after `cancel()`
    done() : after any of the three above
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
        self.progress = Progress(lambda fraction, text: self.progressed.emit(fraction, text))
        self._thread: threading.Thread | None = None
        self.result: Any = None
        self.error: str | None = None

    def start(self) -> None:
        """Start the work in a daemon thread."""
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

    def _run(self) -> None:
        try:
            result = self._function(*self._args, progress=self.progress, **self._kwargs)
        except Cancelled:
            self.cancelled.emit()
        except WeightsmithError as error:
            self.error = str(error)
            self.failed.emit(self.error)
        except MemoryError:
            self.error = f"{self.name}: out of memory"
            self.failed.emit(self.error)
        except Exception as error:  # never let a worker's surprise crash the app
            first = str(error).splitlines()[0] if str(error) else ""
            self.error = f"{self.name}: unexpected {type(error).__name__}: {first}"
            traceback.print_exc()
            self.failed.emit(self.error)
        else:
            self.result = result
            self.succeeded.emit(result)
        self.done.emit()
