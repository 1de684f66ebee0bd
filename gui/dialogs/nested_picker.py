"""Choose which state dict of a nested checkpoint to open (model, EMA, ...)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QVBoxLayout,
    QWidget,
)


class NestedPicker(QDialog):
    """A list of the state dicts a checkpoint holds, most likely first."""

    def __init__(self, path: str, candidates: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a State Dict")
        self.candidates = list(candidates)
        layout = QVBoxLayout(self)
        label = QLabel(f"{Path(path).name} holds {len(candidates)} sets of weights. "
                       "Which one do you want to open?", self)
        label.setWordWrap(True)
        layout.addWidget(label)
        self.list = QListWidget(self)
        self.list.addItems([name or "(the file itself)" for name in self.candidates])
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda item: self.accept())
        layout.addWidget(self.list)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def choose(self, name: str) -> None:
        self.list.setCurrentRow(self.candidates.index(name))

    def choice(self) -> str:
        """The chosen candidate ('' is the file itself)."""
        return self.candidates[max(self.list.currentRow(), 0)]
