"""Long document work (open, save, load) off the GUI thread, shown in the status bar.

One document task runs at a time: a progress bar, its text and a Cancel button
appear in the status bar while it runs. Results come back as Qt signals in the
GUI thread, where the callbacks given to `run` handle them.

The bar starts busy (moving) and shows the task's fraction from its first report on,
but never before the busy bar has been painted once: the report is drained by a timer
and a QProgressBar repaints synchronously when its value changes, while the newly
shown bar paints only when the event loop gets to it. On a loaded machine (the worker
holding the GIL, the GUI thread waiting for it) the drain could come first, and the
bar went from hidden straight to a fraction: the user never saw that the work had
started. A report that arrives before that first paint is kept and shown right after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from .workers import Task


class TaskRunner(QWidget):
    """Runs one Task at a time and shows its progress with a Cancel button.

    Signals
    -------
    finished(str, str) : a task ended: its name and 'succeeded', 'failed' or 'cancelled'
    """

    finished = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task: Task | None = None
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop at the next safe point; nothing is changed")
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        #: whether the bar was painted since the running task started (busy)
        self._busy_shown = False
        #: the task's latest report while the busy bar has not been painted yet
        self._pending: tuple[float, str] | None = None
        self.bar.installEventFilter(self)
        self.hide()

    @property
    def busy(self) -> bool:
        return self.task is not None

    def run(self, function: Callable[..., Any], *args: Any, name: str, text: str,
            on_success: Callable[[Any], None],
            on_failure: Callable[[str], None] | None = None,
            on_cancel: Callable[[], None] | None = None, **kwargs: Any) -> Task:
        """Start `function(*args, progress=..., **kwargs)` in the background.

        Raises
        ------
        RuntimeError : another task is still running (check `busy` first)
        """
        if self.task is not None:
            raise RuntimeError(f"{self.task.name} is still running")
        # Workers run at the GUI thread's own OS priority. They once ran at nice +10 to
        # leave the GUI the CPU; under load that backfired: a low-priority worker holding
        # the GIL (or the import lock) is rarely scheduled, so the GUI thread waits for
        # it. With three busy loops on 2 cores, opening the demo took 147-165 s at nice
        # +10 against 29-38 s at normal priority, the window silent for 14-20 s against
        # 2.7-4 s.
        task = Task(function, *args, name=name, parent=self, **kwargs)
        self.task = task
        task.progressed.connect(self._on_progress)

        def succeeded(result: Any) -> None:
            self._end(task, "succeeded")
            on_success(result)

        def failed(message: str) -> None:
            self._end(task, "failed")
            if on_failure is not None:
                on_failure(message)

        def cancelled() -> None:
            self._end(task, "cancelled")
            if on_cancel is not None:
                on_cancel()

        task.succeeded.connect(succeeded)
        task.failed.connect(failed)
        task.cancelled.connect(cancelled)
        # `done` is the thread's last signal: only then may the Task object go.
        task.done.connect(task.deleteLater)
        self.label.setText(text)
        # Busy (a moving bar) until the task reports how far it is: the first open of a
        # run also imports torch, which reports nothing.
        self.bar.setRange(0, 0)
        self._busy_shown = False
        self._pending = None
        self.cancel_button.setEnabled(True)
        self.show()
        task.start()
        return task

    def cancel(self) -> None:
        """Ask the running task to stop."""
        if self.task is not None:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self.label.setText(f"{self.label.text()} (cancelling…)")

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the running task and wait for its thread (the window is closing)."""
        task = self.task
        if task is not None:
            task.cancel()
            task.wait(timeout)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.bar and event.type() == QEvent.Type.Paint \
                and not self._busy_shown:
            self._busy_shown = True
            if self._pending is not None:
                # After this paint (it shows the busy bar), not in its place.
                QTimer.singleShot(0, self, self._show_pending)
        return super().eventFilter(watched, event)

    def _on_progress(self, fraction: float, text: str) -> None:
        if not self._busy_shown:
            self._pending = (fraction, text)
            return
        self._show_progress(fraction, text)

    def _show_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and self.task is not None:
            self._show_progress(*pending)

    def _show_progress(self, fraction: float, text: str) -> None:
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1000)
        self.bar.setValue(int(fraction * 1000))
        if text:
            self.bar.setToolTip(text)

    def _end(self, task: Task, outcome: str) -> None:
        if task is self.task:
            self.task = None
            self._pending = None
            self.hide()
        self.finished.emit(task.name, outcome)
