"""How dialogs and message boxes are shown, in one place that tests can replace.

Every modal question the GUI asks goes through `run_dialog`, `ask`, `choose_*` or
`show_error`/`show_info`, called through this module (`base.run_dialog(...)`), so a
test can replace them with functions that fill the fields and answer at once: no
test ever waits for a human.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox, QWidget

#: the window title of message boxes
APP_TITLE = "Weightsmith"


def run_dialog(dialog: QDialog) -> bool:
    """Show `dialog` modally; True when the user accepted it."""
    return dialog.exec() == QDialog.DialogCode.Accepted


def show_error(parent: QWidget | None, message: str) -> None:
    """Show one clear line about what went wrong (never a traceback)."""
    box = QMessageBox(QMessageBox.Icon.Warning, APP_TITLE, message, QMessageBox.StandardButton.Ok,
                      parent)
    box.exec()


def show_info(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    """Show information the user asked for (a report, what was restored)."""
    box = QMessageBox(QMessageBox.Icon.Information, title, message,
                      QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.exec()


def ask(parent: QWidget | None, title: str, question: str, yes: str = "Yes",
        no: str = "No", details: str = "") -> bool:
    """Ask a yes/no question; True for `yes`."""
    box = QMessageBox(QMessageBox.Icon.Question, title, question,
                      QMessageBox.StandardButton.NoButton, parent)
    yes_button = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(no, QMessageBox.ButtonRole.RejectRole)
    if details:
        box.setDetailedText(details)
    box.setDefaultButton(yes_button)
    box.exec()
    return box.clickedButton() is yes_button


def ask_save_changes(parent: QWidget | None, name: str) -> str:
    """Ask what to do with unsaved changes: 'save', 'discard' or 'cancel'."""
    box = QMessageBox(QMessageBox.Icon.Warning, APP_TITLE,
                      f"{name} has unsaved changes. Save them?",
                      QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                      | QMessageBox.StandardButton.Cancel, parent)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    if answer == QMessageBox.StandardButton.Save:
        return "save"
    if answer == QMessageBox.StandardButton.Discard:
        return "discard"
    return "cancel"


def choose_open_path(parent: QWidget | None, title: str, folder: str, filters: str,
                     directory: bool = False) -> str | None:
    """Ask for a file (or a folder) to read; None when cancelled."""
    if directory:
        path = QFileDialog.getExistingDirectory(parent, title, folder)
    else:
        path, _ = QFileDialog.getOpenFileName(parent, title, folder, filters)
    return path or None


def choose_save_path(parent: QWidget | None, title: str, folder: str, filters: str) -> str | None:
    """Ask for a file to write; None when cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, folder, filters)
    return path or None
