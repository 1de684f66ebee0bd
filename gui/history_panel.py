"""The history panel: one row per undo step; clicking a row moves the document there.

Row 0 is the state the document was opened in (or the oldest state still
reachable when old steps were dropped for the undo budget); row k is the state
after step k. The current state is bold; undone steps are greyed out until a new
edit discards them. Clicking a row calls `Session.go_to`, the same undo/redo the
menus use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QFont, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from engine.errors import EditError

from .listening import SessionListener

if TYPE_CHECKING:
    from engine.session import Session


class HistoryPanel(QListWidget):
    """The list of steps of a session's history.

    Signals
    -------
    error(str) : moving through the history was refused (e.g. the session is busy)
    """

    error = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Session | None = None
        self._listener = SessionListener(self, history_changed=self._on_history_changed)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.itemClicked.connect(self._on_item_clicked)
        self.itemActivated.connect(self._on_item_clicked)
        self._updating = False

    def set_session(self, session: Session | None) -> None:
        """Show the history of `session`; disconnects from the previous one."""
        self.session = session
        self._listener.follow(session)
        self._on_history_changed()

    def _on_history_changed(self) -> None:
        self._updating = True
        self.blockSignals(True)
        try:
            self.clear()
            if self.session is None:
                return
            history = self.session.history
            dropped = len(history.dropped)
            start = "Opened" if not dropped else f"Oldest kept state ({dropped} older " \
                                                 "step(s) can no longer be undone)"
            labels = [start, *history.labels]
            grey = QBrush(self.palette().color(QPalette.ColorGroup.Disabled,
                                               QPalette.ColorRole.Text))
            bold = QFont(self.font())
            bold.setBold(True)
            clean = history.clean_position
            for row, label in enumerate(labels):
                saved = clean == row
                item = QListWidgetItem(f"{label}   (saved)" if saved and row else label)
                item.setData(Qt.ItemDataRole.UserRole, row)
                if row > history.position:
                    item.setForeground(grey)
                    item.setToolTip("Undone: click to redo up to here")
                elif row == history.position:
                    item.setFont(bold)
                    item.setToolTip("The current state")
                else:
                    item.setToolTip("Click to undo back to here")
                self.addItem(item)
            self.setCurrentRow(history.position)
            self.scrollToItem(self.item(history.position))
        finally:
            self.blockSignals(False)
            self._updating = False

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        if self._updating or self.session is None:
            return
        position = int(item.data(Qt.ItemDataRole.UserRole))
        if position == self.session.history.position:
            return
        try:
            self.session.go_to(position)
        except EditError as error:
            self.error.emit(str(error))
            self._on_history_changed()

    def change_position(self, position: int) -> None:
        """Move the document to `position` as a click on that row would."""
        item = self.item(position)
        if item is not None:
            self._on_item_clicked(item)
