"""The values of a tensor (or of a 2-D slice of it) in a table, editable in place.

A scalar is one cell, a vector one column, a matrix a grid; a tensor with more
dimensions shows the matrix at the leading indices typed in the slice box
(`0, 1` shows `t[0, 1, :, :]`). The table only reads the cells on screen, so a
large matrix costs nothing until scrolled to.

Editing a cell commits one `set` edit with an `index` through `Session.apply`
(never by writing to the tensor): it is undoable, recorded in the recipe, and
checked by the engine. Text that is not a number for the tensor's dtype is
refused with a message; nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.document import dtype_name, shape_text
from engine.errors import EditError

if TYPE_CHECKING:
    import torch

    from engine.session import Session

ModelIndex = QModelIndex | QPersistentModelIndex


def parse_cell(text: str, dtype: torch.dtype) -> int | float | bool:
    """The number typed into a cell, for a tensor of `dtype`.

    Raises
    ------
    ValueError : with a message naming what was expected
    """
    text = text.strip()
    if str(dtype) == "torch.bool":
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"'{text}' is not true or false")
    if dtype.is_floating_point or dtype.is_complex:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
        if not math.isfinite(value):
            raise ValueError("the value must be finite (use a set edit with an expression "
                             "for inf or nan)")
        return value
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"'{text}' is not an integer ({dtype_name(dtype)})") \
            from None


class ValuesModel(QAbstractTableModel):
    """A lazy 2-D table over a tensor region; edits go through `commit(index_text, value)`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._view: torch.Tensor | None = None
        self._dtype: torch.dtype | None = None  # set with the first region
        self._prefix: tuple[int, ...] = ()
        self._vector = False
        self._scalar = False
        self.commit: Callable[[str, Any], bool] | None = None
        self.refused: Callable[[str], None] | None = None

    def set_region(self, tensor: torch.Tensor | None, prefix: tuple[int, ...] = ()) -> None:
        """Show `tensor[prefix]` (a 0-, 1- or 2-D region); None clears the table."""
        self.beginResetModel()
        if tensor is None:
            self._view = None
        else:
            view = tensor.detach()
            for index in prefix:
                view = view[index]
            self._scalar = view.dim() == 0
            self._vector = view.dim() == 1
            self._view = view.reshape(1, 1) if self._scalar else (
                view.unsqueeze(1) if self._vector else view)
            self._dtype = tensor.dtype
            self._prefix = prefix
        self.endResetModel()

    def refresh(self) -> None:
        """Re-read every cell (the tensor's values changed)."""
        if self._view is not None and self.rowCount() and self.columnCount():
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self.rowCount() - 1, self.columnCount() - 1))

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if self._view is None or parent.isValid() else int(self._view.shape[0])

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if self._view is None or parent.isValid() else int(self._view.shape[1])

    def _value(self, row: int, column: int) -> Any:
        assert self._view is not None
        return self._view[row, column].item()

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._view is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            value = self._value(index.row(), index.column())
            if isinstance(value, float):
                return f"{value:.6g}"
            return str(value).lower() if isinstance(value, bool) else str(value)
        if role == Qt.ItemDataRole.EditRole:
            value = self._value(index.row(), index.column())
            return repr(value) if isinstance(value, float) else str(value)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"[{self.index_text(index.row(), index.column())}] = " \
                   f"{self._value(index.row(), index.column())!r}"
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            if self._vector and orientation == Qt.Orientation.Horizontal:
                return "value"
            return str(section)
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self.commit is not None and self._dtype is not None and not self._dtype.is_complex:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def index_text(self, row: int, column: int) -> str:
        """The index of a cell in the whole tensor, as `set.index` text ('0, 1, 2, 3')."""
        if self._scalar:
            parts: tuple[int, ...] = self._prefix
        elif self._vector:
            parts = (*self._prefix, row)
        else:
            parts = (*self._prefix, row, column)
        return ", ".join(str(part) for part in parts)

    def setData(self, index: ModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or self.commit is None:
            return False
        try:
            number = parse_cell(str(value), self._dtype)
        except ValueError as error:
            if self.refused is not None:
                self.refused(str(error))
            return False
        if isinstance(number, bool):
            number = int(number)  # `set.value` takes numbers; 1/0 set a bool tensor
        return self.commit(self.index_text(index.row(), index.column()), number)


class ValuesTable(QWidget):
    """A slice box, a caption and the values table for one tensor of a session.

    Signals
    -------
    error(str) : an edit was refused (by the engine or for bad text); show it
    """

    error = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Session | None = None
        self.name: str | None = None
        self._shape: tuple[int, ...] = ()
        self.model = ValuesModel(self)
        self.model.commit = self._commit
        self.model.refused = self.error.emit
        self.slice_edit = QLineEdit(self)
        self.slice_edit.setPlaceholderText("leading indices, e.g. 0, 1")
        self.slice_edit.setToolTip("Which matrix of a tensor with more than two dimensions "
                                   "to show: one index per leading dimension")
        self.slice_edit.editingFinished.connect(self._on_slice_changed)
        self.caption = QLabel(self)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.table.horizontalHeader().setDefaultSectionSize(
            self.table.fontMetrics().horizontalAdvance("-0.00000000") + 12)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.verticalHeader().setDefaultSectionSize(
            self.table.fontMetrics().height() + 6)
        self.table.setEditTriggers(QTableView.EditTrigger.DoubleClicked
                                   | QTableView.EditTrigger.EditKeyPressed
                                   | QTableView.EditTrigger.AnyKeyPressed)
        slice_row = QHBoxLayout()
        slice_row.setContentsMargins(0, 0, 0, 0)
        self.slice_label = QLabel("Slice:", self)
        slice_row.addWidget(self.slice_label)
        slice_row.addWidget(self.slice_edit, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(slice_row)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)

    def show_tensor(self, session: Session | None, name: str | None) -> None:
        """Show tensor `name` of `session` (None: nothing). Reads the tensor's data."""
        changed = name != self.name or session is not self.session
        self.session, self.name = session, name
        if session is None or name is None:
            self.model.set_region(None)
            self.caption.setText("")
            self._set_slice_visible(False)
            return
        tensor = session.document.tensor(name)
        self._shape = tuple(tensor.shape)
        leading = max(len(self._shape) - 2, 0)
        self._set_slice_visible(leading > 0)
        try:
            typed = len(self._prefix_from_text())
        except ValueError:
            typed = -1
        if changed or typed != leading:
            self.slice_edit.setText(", ".join("0" for _ in range(leading)))
        self._show_region(tensor)

    def refresh(self) -> None:
        """Re-read the values after the tensor changed (its object may have changed too)."""
        if self.session is None or self.name is None:
            return
        try:
            tensor = self.session.document.tensor(self.name)
        except EditError:
            self.show_tensor(None, None)
            return
        if tuple(tensor.shape) != self._shape:
            self.show_tensor(self.session, self.name)
        else:
            self._show_region(tensor)

    def _set_slice_visible(self, visible: bool) -> None:
        self.slice_edit.setVisible(visible)
        self.slice_label.setVisible(visible)

    def _prefix_from_text(self) -> tuple[int, ...]:
        text = self.slice_edit.text().strip()
        if not text:
            return ()
        return tuple(int(part) for part in text.replace("[", "").replace("]", "").split(","))

    def _show_region(self, tensor: torch.Tensor) -> None:
        leading = max(tensor.dim() - 2, 0)
        try:
            prefix = self._prefix_from_text() if leading else ()
            if len(prefix) != leading:
                raise ValueError(f"give {leading} index(es)")
            for size, index in zip(tensor.shape, prefix, strict=False):
                if not -size <= index < size:
                    raise ValueError(f"index {index} is out of range for size {size}")
            prefix = tuple(index % size for size, index in zip(tensor.shape, prefix, strict=False))
        except ValueError as error:
            self.caption.setText(f"Slice: {error}")
            self.model.set_region(None)
            return
        self.model.set_region(tensor, prefix)
        where = ", ".join([*map(str, prefix), *([":"] * min(tensor.dim(), 2))])
        self.caption.setText(f"{shape_text(tuple(tensor.shape))}" +
                             (f" · showing [{where}]" if prefix else "") +
                             " · double-click a cell to edit")

    def _on_slice_changed(self) -> None:
        if self.session is not None and self.name is not None:
            self._show_region(self.session.document.tensor(self.name))

    def _commit(self, index_text: str, value: Any) -> bool:
        if self.session is None or self.name is None:
            return False
        spec: dict[str, Any] = {"op": "set", "target": self.name, "value": value}
        if index_text:
            spec["index"] = index_text
        try:
            self.session.apply(spec)
        except EditError as error:
            self.error.emit(str(error))
            return False
        return True
