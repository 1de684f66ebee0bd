"""Edit ▸ Tensors ▸ Across Tensors: concat, split, permute, transpose, reshape and copy
from a file (checkpoint mode), each through its form (`gui.dialogs.layout_dialog`),
applied as one undoable step; a refusal stays in the form, under the field at fault."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

if TYPE_CHECKING:
    from .main_window import MainWindow

#: the ops, with their menu text (the dialogs, and torch with them, load when used)
OPS = {"concat": "Concatenate…", "split": "Split…", "permute": "Permute…",
       "transpose": "Transpose…", "reshape": "Reshape…", "copy_from_file": "Copy From File…"}


class LayoutActions(QObject):
    """The cross-tensor actions of one main window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.actions: dict[str, QAction] = {}
        for op, text in OPS.items():
            action = QAction(text, window)
            tip = f"Checkpoint operation across tensors: {op}"
            action.setStatusTip(tip)
            action.setToolTip(tip)
            action.triggered.connect(lambda checked=False, op=op: self.run(op))
            self.actions[op] = action

    def fill_menu(self, menu: QMenu) -> None:
        """Add the Across Tensors submenu to `menu` (the Tensors menu)."""
        across = menu.addMenu("Across Tensors")
        for action in self.actions.values():
            across.addAction(action)
        menu.aboutToShow.connect(self.update_enabled)
        across.aboutToShow.connect(self.update_enabled)

    def update_enabled(self) -> None:
        """Checkpoint mode; concat needs two selected tensors, copy from a file none, the
        others one."""
        session = self.window.session
        count = len(self._tensors()) if session is not None else 0
        for op, action in self.actions.items():
            needed = {"concat": count >= 2, "copy_from_file": True}.get(op, count == 1)
            action.setEnabled(session is not None and session.can_apply(op) and needed)

    def _tensors(self) -> list[str]:
        session = self.window.session
        if session is None:
            return []
        document = session.document
        return [path for path in self.window.selected_paths() if document.is_tensor(path)]

    def run(self, op: str) -> None:
        """Ask for the op's fields (filled from the selection) and apply it."""
        from .dialogs.layout_dialog import LayoutDialog

        session = self.window.session
        if session is None or not session.can_apply(op):
            return
        names = self._tensors()
        shapes = {name: tuple(session.document.tensor_meta(name)[0]) for name in names}
        folder = self.window.settings.last_folder("open") or ""
        dialog = LayoutDialog(op, names, shapes, folder, self.window)
        self.window.edit_actions.through_dialog(dialog, lambda: [dialog.spec()])
