"""Hand results from worker threads to the GUI thread without cross-thread Qt signals.

A Qt signal emitted in a Python worker thread and delivered to a Python callable can
crash PySide6 (seen here as rare segmentation faults under load; reported upstream as
PYSIDE-3124 for 6.8 and later). So no worker ever emits a Qt signal or calls Qt: it puts
`(function, args)` on a thread-safe queue, and a QTimer in the GUI thread drains the
queue and calls them there, where they may emit signals and touch widgets freely.

The timer runs only while somebody expects a delivery (`hold` ... `release`), so an idle
window does not wake up. Delivery latency is at most one timer interval (10 ms).
"""

from __future__ import annotations

import queue
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

INTERVAL_MS = 10


class GuiThreadQueue(QObject):
    """Calls posted from any thread, run in the GUI thread in the order posted."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = \
            queue.SimpleQueue()
        self._holds = 0
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.drain)

    def post(self, function: Callable[..., Any], *args: Any) -> None:
        """Run `function(*args)` in the GUI thread soon (callable from any thread)."""
        self._items.put((function, args))

    def hold(self) -> None:
        """Expect deliveries (GUI thread): the timer runs until every hold is released."""
        self._holds += 1
        if not self._timer.isActive():
            self._timer.start()

    def release(self) -> None:
        """Stop expecting one delivery (GUI thread)."""
        self._holds = max(self._holds - 1, 0)
        if self._holds == 0:
            self._timer.stop()

    def drain(self) -> None:
        """Run everything posted so far (GUI thread)."""
        while True:
            try:
                function, args = self._items.get_nowait()
            except queue.Empty:
                return
            try:
                function(*args)
            except Exception:  # one broken receiver must not stop the deliveries
                traceback.print_exc()


_instance: GuiThreadQueue | None = None


def gui_thread_queue() -> GuiThreadQueue:
    """The application's queue; created on first use, which must be in the GUI thread."""
    global _instance
    if _instance is None:
        app = QCoreApplication.instance()
        if app is None or QThread.currentThread() is not app.thread():
            raise RuntimeError("gui_thread_queue: first use must be in the GUI thread")
        _instance = GuiThreadQueue(app)
        # The queue dies with the application (tests create one per session).
        _instance.destroyed.connect(_forget)
    return _instance


def _forget(*_args: object) -> None:
    global _instance
    _instance = None
