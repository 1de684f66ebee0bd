"""Ask before anything runs code: name the risk, list exactly what would run.

One dialog for every route that needs trust: opening a file that would import code
(the list is what the unpickler would import, from `engine.io.trust.code_listing`),
applying an edit or replaying a recipe or crash journal that would run code (the list is
`engine.code_needs`' description of each piece). When the list cannot be known in full,
the dialog says why and offers no way to trust it.
"""

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
    """Confirm `trust=True` for `path`; accepted means the user trusts the file.

    Parameters
    ----------
    path : the file (or, with `subject`, any name shown in bold)
    globals_ : what would run: imported globals, code files, or code descriptions
    undetermined : why the list is incomplete; then there is no Trust button
    subject : what asks for trust, e.g. "The recipe"; default: the file's name
    action : the text of the Trust button
    """

    def __init__(self, path: str, globals_: list[str], parent: QWidget | None = None, *,
                 undetermined: str | None = None, subject: str | None = None,
                 action: str = "Trust and Open") -> None:
        super().__init__(parent)
        self.setWindowTitle("Run Code From This Source?")
        self.globals = list(globals_)
        self.undetermined = undetermined
        layout = QVBoxLayout(self)
        torchscript = any(name.startswith("torchscript:") for name in self.globals)
        if subject is not None:
            what = f"<b>{subject}</b> would run the code listed below"
        elif torchscript:
            what = f"<b>{Path(path).name}</b> is a TorchScript archive: it carries program code"
        else:
            what = (f"<b>{Path(path).name}</b> is not plain tensors: loading it imports and runs "
                    "the code listed below")
        risk = ("Code from an untrusted source can do anything your user account can do "
                "(read, change or delete files, send data away). Go on only if you trust "
                "where it came from. Weightsmith never runs such code without asking.")
        if undetermined:
            risk = (f"What it would run cannot be determined ({undetermined}), so it cannot "
                    "be trusted from here. Open it from the command line with --trust only "
                    "if you trust where it came from.")
        text = QLabel(f"{what}.<br><br>{risk}", self)
        text.setWordWrap(True)
        layout.addWidget(text)
        layout.addWidget(QLabel("Code it carries:" if torchscript else "What would run:", self))
        self.list = QListWidget(self)
        shown = self.globals or ["(nothing listed)"]
        if undetermined:
            shown = [*self.globals, "… and more that cannot be determined"]
        self.list.addItems(shown)
        layout.addWidget(self.list)
        buttons = QDialogButtonBox(self)
        self.trust_button: QPushButton | None = None
        if not undetermined:
            self.trust_button = QPushButton(action, self)
            buttons.addButton(self.trust_button, QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)  # the safe answer is the default
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 380)
