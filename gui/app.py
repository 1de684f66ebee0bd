"""Start the desktop editor: `python main.py [PATH] [--arch SPEC]`.

With no PATH the built-in demo opens, so a new user sees a real model at once.
If the previous run did not exit cleanly and left unsaved edits in its crash
journal, the app first offers to restore them (and shows what it restored).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="weightsmith", description="Weightsmith editor")
    parser.add_argument("path", nargs="?", help="a checkpoint file or folder to open")
    parser.add_argument("--arch", help="open PATH as this architecture (torchvision:NAME, "
                        "file.py:Class)")
    parser.add_argument("--demo", action="store_true", help="open the built-in demo")
    parser.add_argument("--no-restore", action="store_true",
                        help="do not offer to restore unsaved edits of a crashed session")
    known, _ = parser.parse_known_args(argv)  # Qt's own options (-style ...) pass through
    return known


def _follow_system_palette(app: QApplication) -> None:
    """Use Fusion where the platform style would not follow a dark system scheme."""
    if sys.platform not in ("win32", "darwin"):
        app.setStyle("Fusion")
    hints = app.styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        # Fusion picks its light or dark palette from the scheme; re-apply it on a change.
        hints.colorSchemeChanged.connect(lambda scheme: app.setPalette(QPalette()))


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (the existing one, if any), set up for high-DPI screens."""
    existing = QApplication.instance()
    if existing is not None:
        return existing  # type: ignore[return-value]
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication([sys.argv[0] if sys.argv else "weightsmith", *(argv or [])])
    app.setApplicationName("Weightsmith")
    app.setOrganizationName("Weightsmith")
    app.setApplicationDisplayName("Weightsmith")
    _follow_system_palette(app)
    return app


def start(window: object, args: argparse.Namespace) -> None:
    """Open the first document: a crashed session's edits, PATH, or the demo."""
    from .dialogs import base
    from .main_window import MainWindow

    assert isinstance(window, MainWindow)
    if not args.no_restore:
        orphans = window.journal.orphans()
        if orphans:
            entry = orphans[0]
            shown = "\n".join(f"• {label}" for label in entry.labels[-10:])
            more = f"\n(and {len(entry.labels) - 10} earlier)" if len(entry.labels) > 10 else ""
            if base.ask(window, "Restore Unsaved Edits?",
                        f"Weightsmith did not close properly. {len(entry.edits)} unsaved "
                        f"edit(s) to {entry.title} can be restored by replaying them:\n"
                        f"{shown}{more}", "Restore", "Discard"):
                window.file_actions.restore_journal(entry)
                return
            entry.discard()
    if args.path and not args.demo:
        window.file_actions.open_path(args.path, arch=args.arch)
    else:
        window.file_actions.open_demo()


class _FirstPaint(QObject):
    """Calls `then` (once, from the event loop) after `window` has painted for the first time."""

    def __init__(self, window: QWidget, then: Callable[[], None]) -> None:
        super().__init__(window)
        self._window = window
        self._then = then
        QApplication.instance().installEventFilter(self)
        # In case nothing paints (a platform without a screen): go ahead anyway.
        QTimer.singleShot(2000, self._go)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and isinstance(watched, QWidget) \
                and watched.window() is self._window:
            QTimer.singleShot(0, self._go)
        return False

    def _go(self) -> None:
        then, self._then = self._then, None
        if then is not None:
            QApplication.instance().removeEventFilter(self)
            then()


def after_first_paint(window: QWidget, then: Callable[[], None]) -> None:
    """Run `then` once `window` is on screen (its first paint done)."""
    _FirstPaint(window, then)


def main(argv: list[str]) -> int:
    """Run the editor until its window closes; return the exit status."""
    from .pyside_fix import install

    install()  # before anything emits a signal; see gui/pyside_fix.py
    args = _parse(list(argv))
    app = create_application(list(argv))
    from .icons import icon
    from .interrupt import InterruptHandler
    from .main_window import MainWindow

    app.setWindowIcon(icon("app"))
    window = MainWindow()
    interrupt = InterruptHandler(window)  # Ctrl+C in the terminal closes the window
    if window.first_run:
        window.showMaximized()  # the screen's available area, the window manager's frame too
    else:
        window.show()
    # Open after the first paint: the window appears at once, and the open task's import
    # of torch (in its worker thread) does not compete with painting it.
    after_first_paint(window, lambda: start(window, args))
    try:
        return app.exec()
    finally:
        interrupt.uninstall()
        # Threads still importing (torch in an open task, pyqtgraph in the preload) must
        # end before the interpreter does: quitting during an import could crash it.
        from . import preload

        window.tasks.stop(timeout=60.0)
        preload.wait()
