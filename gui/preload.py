"""Import what the first plot and the first test training need, in the background.

The window and the first document do not wait for pyqtgraph (about a second to
import) or the training code; once the document is shown, a worker thread imports
them, so the first click on a tensor does not freeze the window while they load.
A module the GUI thread asks for meanwhile simply waits for the worker's import.
"""

from __future__ import annotations

import importlib
import threading

#: what the plots and the training panel import first
MODULES = ("pyqtgraph", "engine.stats", "engine.histograms", "engine.training")

_thread: threading.Thread | None = None


def preload(modules: tuple[str, ...] = MODULES) -> threading.Thread | None:
    """Start importing `modules` in a daemon thread (once per process); return it."""
    global _thread
    if _thread is not None:
        return None

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the real import, when needed, reports the problem
                return

    thread = _thread = threading.Thread(target=run, name="weightsmith-preload", daemon=True)
    thread.start()
    return thread


def wait(timeout: float = 60.0) -> None:
    """Wait for the imports to end (before the interpreter exits: a thread still inside
    an import of a Qt binding while Python shuts down can crash the process)."""
    if _thread is not None:
        _thread.join(timeout)
