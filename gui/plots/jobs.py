"""Plot computations, one current job per kind, small ones at once and big ones in a worker.

A new job of a kind supersedes the previous one: the old job is cancelled (dropped if
it has not started, stopped at its next safe point if it has) and whatever it still
delivers is ignored, so a quick run of selections only ever draws the last one.
Results are always delivered in the GUI thread.

Background jobs run one at a time in a single worker thread, in the order they were
asked for. One thread rather than one per job: on a machine with two cores, a few
superseded computations running side by side starve the GUI thread, and starting a
thread waits for the CPU; a queue drops superseded jobs before they cost anything.
"""

from __future__ import annotations

import queue
import threading
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Signal

from engine.errors import WeightsmithError
from engine.progress import Cancelled, Progress

from ..gui_thread import gui_thread_queue

Done = Callable[[Any], None]
Failed = Callable[[str], None]

#: seconds `shutdown` waits for the worker to finish its current job
SHUTDOWN_WAIT = 5.0
#: errors a computation reports as one line (anything else is a bug: also printed)
EXPECTED_ERRORS = (WeightsmithError, ValueError, RuntimeError, OSError, MemoryError)


@dataclass(eq=False)
class _Job:
    kind: str
    function: Callable[..., Any]
    done: Done
    failed: Failed
    progress: Progress = field(default_factory=Progress)

    def forget(self) -> None:
        """Let go of the computation and the callbacks (they hold the widget that asked).

        A job outlives its delivery in the worker's hands and the GUI thread's queue; a
        job that still held them kept its widget alive until the cyclic garbage collector
        ran, and a widget freed by the collector is torn down half-cleared (PySide then
        printed "Slot 'PlotPanel::' not found" for each signal its dying children sent).
        """
        self.function = _nothing
        self.done = self.failed = _nothing


def _nothing(*_: Any, **__: Any) -> None:
    """What a forgotten job computes and calls."""


class Jobs(QObject):
    """Run plot computations by kind ("histogram", "heatmap", ...).

    Signals
    -------
    busy_changed(bool) : whether any background job is still to deliver
    progressed(float, str) : progress of the current background job
    """

    busy_changed = Signal(bool)
    progressed = Signal(float, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._current: dict[str, _Job] = {}
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._running: _Job | None = None  # read by tests and shutdown; set by the worker
        # The worker never calls Qt: it posts outcomes and progress to the GUI thread.
        self._gui = gui_thread_queue()
        app = QCoreApplication.instance()
        if app is not None:
            # A worker still inside torch when the interpreter exits aborts the process.
            app.aboutToQuit.connect(self.shutdown)

    # ------------------------------------------------------------------ API
    def run(self, kind: str, function: Callable[..., Any], done: Done, failed: Failed, *,
            background: bool) -> None:
        """Compute `function(progress=...)` and hand its result to `done` (or an error line
        to `failed`), in the GUI thread; supersede the job of `kind` still to deliver."""
        self.cancel(kind)
        if not background:
            try:
                result = function(progress=None)
            except EXPECTED_ERRORS as error:
                failed(_one_line(error))
                return
            done(result)
            return
        job = _Job(kind, function, done, failed)
        # The job weakly: a job holding its progress holding the job is a cycle, which only
        # the cyclic garbage collector frees (and with it whatever the callbacks hold).
        job.progress = Progress(_ProgressReporter(self, job))
        was_busy = self.busy
        self._current[kind] = job
        self._gui.hold()  # released when the job's outcome is delivered (_on_finished)
        self._ensure_worker()
        self._queue.put(job)
        if not was_busy:
            self.busy_changed.emit(True)

    def cancel(self, kind: str) -> None:
        """Forget the job of `kind`; stop it if it runs, drop it if it waits."""
        job = self._current.pop(kind, None)
        if job is not None:
            job.progress.cancel()
            job.forget()
            if not self._current:
                self.busy_changed.emit(False)

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

    def worker_idle(self) -> bool:
        """Whether the worker thread runs nothing (superseded work included)."""
        return self._running is None and self._queue.empty()

    def shutdown(self) -> None:
        """Cancel every job, stop the worker thread and wait for it (for close)."""
        self.cancel_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(SHUTDOWN_WAIT)

    # ------------------------------------------------------------------ worker thread
    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="weightsmith-plots",
                                            daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job.progress.cancelled:
                # Superseded before it started: costs nothing, but still says so.
                self._gui.post(self._on_finished, job, "cancelled", None)
                continue
            self._running = job
            try:
                value = job.function(progress=job.progress)
                outcome = "done"
            except Cancelled:
                value, outcome = None, "cancelled"
            except EXPECTED_ERRORS as error:
                value, outcome = _one_line(error), "failed"
            except Exception as error:  # a bug; keep the worker alive and say so
                traceback.print_exc()
                value, outcome = f"unexpected {type(error).__name__}: {_one_line(error)}", "failed"
            finally:
                self._running = None
            self._gui.post(self._on_finished, job, outcome, value)

    def _report(self, job: _Job, fraction: float, text: str) -> None:
        self._gui.post(self._on_reported, job, fraction, text)

    # ------------------------------------------------------------------ GUI thread
    def _on_finished(self, job: _Job, outcome: str, value: Any) -> None:
        self._gui.release()
        if not shiboken6.isValid(self) or self._current.get(job.kind) is not job:
            return  # superseded, or its widget is gone: the result no longer matters
        del self._current[job.kind]
        if not self._current:
            self.busy_changed.emit(False)
        done, failed = job.done, job.failed
        job.forget()
        if outcome == "done":
            done(value)
        elif outcome == "failed":
            failed(value)

    def _on_reported(self, job: _Job, fraction: float, text: str) -> None:
        if shiboken6.isValid(self) and self._current.get(job.kind) is job:
            self.progressed.emit(fraction, text)


class _ProgressReporter:
    """A job's progress callback: posts to the GUI thread while the job lives."""

    __slots__ = ("_job", "_jobs")

    def __init__(self, jobs: Jobs, job: _Job) -> None:
        self._jobs = weakref.ref(jobs)
        self._job = weakref.ref(job)

    def __call__(self, fraction: float, text: str) -> None:
        jobs, job = self._jobs(), self._job()
        if jobs is not None and job is not None:
            jobs._report(job, fraction, text)


def _one_line(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "out of memory"
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__
