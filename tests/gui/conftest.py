"""GUI test settings: any Qt warning fails the test, except the offscreen platform's own.

pytest-qt captures Qt's messages for every test; marking each GUI test with
`qt_log_level_fail("WARNING")` turns a warning (including every complaint of
Qt's QAbstractItemModelTester behind `qtmodeltester`) into a failure. The ignore
list holds only messages the offscreen platform prints for things it cannot do;
each entry says why it is harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gui import pyside_fix

# Before any GUI test emits a signal: PySide6 6.12.0 loses a reference to True on
# every Python emit, which aborts the interpreter after a few thousand emits.
pyside_fix.install()

#: regular expressions of harmless messages of the offscreen platform plugin
HARMLESS_QT_MESSAGES = (
    # The offscreen plugin has no window manager to pass size hints or raise windows to.
    r"This plugin does not support propagateSizeHints\(\)",
    r"This plugin does not support raise\(\)",
    r"This plugin does not support grabbing the keyboard",
    # No real screen: Qt cannot query the platform's dark-mode or font settings.
    r"QFont::setPointSizeF: Point size <= 0",
    r"Could not find a platform theme",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail every GUI test on Qt warnings, apart from the harmless offscreen ones."""
    for item in items:
        if "tests/gui/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*HARMLESS_QT_MESSAGES))


# ---------------------------------------------------------------------- fixtures
class DialogDriver:
    """Answers the GUI's modal dialogs and questions in place of a user.

    A test queues one answer per dialog it expects: a function that fills the
    dialog's fields (returning False to cancel). An unexpected dialog fails the test;
    error messages are collected instead of shown.
    """

    def __init__(self) -> None:
        self.answers: list[Any] = []
        self.questions: list[bool | str] = []
        self.paths: list[str | None] = []
        self.errors: list[str] = []
        #: messages of dialogs that refused OK and stayed open (the driver then cancels)
        self.refused: list[str] = []
        self.infos: list[str] = []
        self.shown: list[str] = []

    def answer(self, fill: Any) -> None:
        """Queue the answer to the next dialog: `fill(dialog)` sets its fields."""
        self.answers.append(fill)

    def run_dialog(self, dialog: Any) -> bool:
        from PySide6.QtWidgets import QDialog

        self.shown.append(type(dialog).__name__)
        if not self.answers:
            dialog.deleteLater()
            raise AssertionError(f"unexpected dialog: {type(dialog).__name__}")
        fill = self.answers.pop(0)
        if fill(dialog) is False:
            dialog.reject()
            return False
        dialog.setResult(QDialog.DialogCode.Rejected)
        dialog.accept()
        if dialog.result() == QDialog.DialogCode.Accepted:
            return True
        # Refused: a user would read the message beside the field, and fix or cancel.
        problem = getattr(dialog, "problem_text", None)
        self.refused.append(problem() if problem is not None else "")
        dialog.reject()
        return False

    def ask(self, *args: Any, **kwargs: Any) -> bool:
        if not self.questions:
            raise AssertionError(f"unexpected question: {args[2] if len(args) > 2 else args}")
        return bool(self.questions.pop(0))

    def ask_save_changes(self, *args: Any) -> str:
        if not self.questions:
            raise AssertionError("unexpected question: save changes?")
        return str(self.questions.pop(0))

    def choose_path(self, *args: Any, **kwargs: Any) -> str | None:
        if not self.paths:
            raise AssertionError("unexpected file dialog")
        return self.paths.pop(0)


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> DialogDriver:
    """Drive every dialog, question, file chooser and message box of the GUI."""
    from gui.dialogs import base

    driver = DialogDriver()
    monkeypatch.setattr(base, "run_dialog", driver.run_dialog)
    monkeypatch.setattr(base, "ask", driver.ask)
    monkeypatch.setattr(base, "ask_save_changes", driver.ask_save_changes)
    monkeypatch.setattr(base, "choose_open_path", driver.choose_path)
    monkeypatch.setattr(base, "choose_save_path", driver.choose_path)
    monkeypatch.setattr(base, "show_error", lambda parent, message: driver.errors.append(message))
    monkeypatch.setattr(base, "show_info",
                        lambda parent, title, message, details="": driver.infos.append(message))
    return driver


@pytest.fixture
def make_window(qtbot: Any, tmp_path: Path, dialogs: DialogDriver):
    """Build a main window over a session, with settings and journal in a temporary folder."""
    from engine.journal import Journal
    from gui.main_window import MainWindow
    from gui.settings import Settings

    windows = []

    def make(session: Any = None, request: dict[str, Any] | None = None,
             path: str | None = None) -> Any:
        window = MainWindow(Settings(tmp_path / "settings.ini"), Journal(tmp_path / "journal"))
        window.resize(1200, 800)
        window.show()
        qtbot.waitExposed(window)
        if session is not None:
            window.set_session(session, request, path)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.session is not None:
            window.session.mark_saved()  # no "save changes?" when the test ends
        window.tasks.stop()
        window.close()
        window.deleteLater()
