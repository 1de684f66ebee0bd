"""Ask before opening a file that would run code: name the risk, list what it imports."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class TrustDialog(QDialog):
    """Confirm `trust=True` for `path`; accepted means the user trusts the file."""

    def __init__(self, path: str, globals_: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open a File That Runs Code?")
        self.globals = list(globals_)
        layout = QVBoxLayout(self)
        torchscript = any(name.startswith("torchscript:") for name in self.globals)
        what = ("is a TorchScript archive: it carries program code" if torchscript else
                "is not plain tensors: loading it imports and runs the code listed below")
        text = QLabel(
            f"<b>{Path(path).name}</b> {what}.<br><br>"
            "A file from an untrusted source can do anything your user account can do "
            "(read, change or delete files, send data away). Open it only if you trust "
            "where it came from. Weightsmith never loads such files without asking.", self)
        text.setWordWrap(True)
        layout.addWidget(text)
        layout.addWidget(QLabel("What it imports:" if not torchscript else "Code it carries:",
                                self))
        self.list = QListWidget(self)
        self.list.addItems(self.globals or ["(nothing listed)"])
        layout.addWidget(self.list)
        buttons = QDialogButtonBox(self)
        self.trust_button = QPushButton("Trust and Open", self)
        buttons.addButton(self.trust_button, QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)  # the safe answer is the default
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 380)
