"""Ctrl+C in the terminal that started the editor: close the window as its close button does.

Qt's event loop runs in C++, where Python never sees a SIGINT until some Python code
runs, so by default Ctrl+C does nothing until the mouse moves. `InterruptHandler`
asks the interpreter to write a byte to a socket on every signal
(`signal.set_wakeup_fd`) and watches that socket with a QSocketNotifier: the event
loop wakes at once and the window is closed, which asks about unsaved changes
exactly as closing the window does. A second Ctrl+C while that question is still
open quits at once; the crash journal keeps the unsaved edits, and the next start
offers to restore them.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QSocketNotifier, QTimer
from PySide6.QtWidgets import QWidget

#: the exit status after a second Ctrl+C (the shell's convention for SIGINT)
INTERRUPTED_STATUS = 130


def _ignore(signum: int, frame: Any) -> None:
    """The Python-level handler: the work happens when the event loop wakes."""


class InterruptHandler(QObject):
    """Turn SIGINT into `window.close()` for as long as it is installed.

    Parameters
    ----------
    window : the main window to close
    """

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.closing = False
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._previous_handler = signal.signal(signal.SIGINT, _ignore)
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._on_wakeup)
        self._installed = True

    def uninstall(self) -> None:
        """Give SIGINT back to whoever had it before."""
        if not self._installed:
            return
        self._installed = False
        self._notifier.setEnabled(False)
        signal.signal(signal.SIGINT, self._previous_handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()

    def _on_wakeup(self, *_args: object) -> None:
        try:
            data = self._reader.recv(64)
        except OSError:
            return
        if bytes([signal.SIGINT]) in data:
            self.interrupted()

    def interrupted(self) -> None:
        """React to one Ctrl+C: close the window, or quit if a close is already asking."""
        if self.closing:
            sys.stderr.write("weightsmith: interrupted; unsaved edits stay in the crash journal "
                             "and are offered for restore at the next start\n")
            QCoreApplication.exit(INTERRUPTED_STATUS)
            return
        # Not from inside the socket notifier: a modal question opens its own event loop.
        QTimer.singleShot(0, self._close_window)

    def _close_window(self) -> None:
        self.closing = True
        try:
            with contextlib.suppress(RuntimeError):  # the window is already gone
                self.window.close()
        finally:
            self.closing = False
