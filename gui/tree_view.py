"""The tree view: keeps expansion and selection as dotted names across edits and undo.

The model rebuilds rows under a path on a structure change; this view records which
rows under it were expanded and selected (by dotted name, never as QModelIndex) just
before, and puts them back just after, fetching rows on the way when needed.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView, QWidget

from .tree_model import COLUMNS, NAME, TreeModel

#: starting widths of the columns, in average character widths
_WIDTHS = {"Name": 30, "Type": 14, "Shape": 14, "Dtype": 9, "Parameters": 11, "Trainable": 8,
           "Tie group": 16}


class ModuleTreeView(QTreeView):
    """A QTreeView over a TreeModel with name-based state.

    Signals
    -------
    selection_changed(list, object) : the selected dotted paths, and the current one or None
    """

    selection_changed = Signal(list, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setUniformRowHeights(True)  # row heights never need every row's data
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAlternatingRowColors(True)
        self.setAnimated(False)
        self.setAllColumnsShowFocus(True)
        self.setExpandsOnDoubleClick(True)
        # Expansion and selection are remembered by name, and kept while rows vanish
        # and come back (a rename and its undo), until the user changes them.
        self._expanded_names: set[str] = set()
        self._saved_selected: list[str] = []
        self._saved_current: str | None = None
        self._restoring = 0
        self._changing = 0
        self.expanded.connect(self._on_expanded)
        self.collapsed.connect(self._on_collapsed)
        # QTreeView fetches more rows of a nested level only when it is expanded; rows
        # of a wide level scrolled into view are fetched here.
        self.verticalScrollBar().valueChanged.connect(self.fetch_visible)

    # ------------------------------------------------------------------ model
    def tree_model(self) -> TreeModel | None:
        model = self.model()
        return model if isinstance(model, TreeModel) else None

    def set_tree_model(self, model: TreeModel) -> None:
        """Show `model`; columns get readable starting widths."""
        self.setModel(model)
        model.subtree_about_to_change.connect(self._save_state)
        model.subtree_changed.connect(self._restore_state)
        model.modelReset.connect(self.forget_state)
        self.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.selectionModel().currentRowChanged.connect(self._on_selection_changed)
        header = self.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        metrics = self.fontMetrics()
        for column, title in enumerate(COLUMNS):
            header.resizeSection(column, metrics.averageCharWidth() * _WIDTHS[title] + 12)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    def fetch_visible(self, *args: object) -> None:
        """Fetch the next rows of any level whose last fetched row is on screen."""
        model = self.tree_model()
        if model is None:
            return
        for _ in range(8):  # a few batches at most per scroll step
            rect = self.viewport().rect()
            index = self.indexAt(QPoint(rect.width() // 2, 1))
            fetched = False
            while index.isValid() and self.visualRect(index).top() < rect.bottom():
                parent = index.parent()
                if index.row() == model.rowCount(parent) - 1 and model.canFetchMore(parent):
                    model.fetchMore(parent)
                    fetched = True
                    break
                index = self.indexBelow(index)
            if not fetched:
                return

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.fetch_visible()

    # ------------------------------------------------------------------ state by name
    def expanded_paths(self) -> set[str]:
        """Dotted paths of the expanded rows."""
        model = self.tree_model()
        if model is None:
            return set()
        return {path for path in model.materialized_paths()
                if self.isExpanded(model.index_of(path))}

    def selected_paths(self) -> list[str]:
        """Dotted paths of the selected rows, in the order they appear."""
        model = self.tree_model()
        if model is None or self.selectionModel() is None:
            return []
        rows = self.selectionModel().selectedRows(NAME)
        paths = [model.path_of(index) for index in rows]
        order = {path: position for position, path in enumerate(model.materialized_paths())}
        return sorted((p for p in paths if p is not None), key=lambda p: order.get(p, -1))

    def current_path(self) -> str | None:
        """Dotted path of the current row, or None."""
        model = self.tree_model()
        index = self.currentIndex()
        if model is None or not index.isValid():
            return None
        return model.path_of(index)

    def expand_path(self, path: str) -> None:
        """Expand the row for `path` and its ancestors (building rows as needed)."""
        model = self.tree_model()
        if model is None:
            return
        index = model.index_for_path(path)
        chain = []
        while index.isValid():
            chain.append(index)
            index = index.parent()
        for item in reversed(chain):
            self.expand(item)
            if model.rowCount(item) == 0 and model.canFetchMore(item):
                model.fetchMore(item)  # now, not at the view's next layout

    def select_paths(self, paths: list[str], current: str | None = None) -> None:
        """Select these rows (building and expanding their ancestors) and make one current."""
        model = self.tree_model()
        if model is None:
            return
        selection = QItemSelection()
        for path in paths:
            index = model.index_for_path(path)
            if not index.isValid():
                continue
            parent = index.parent()
            if parent.isValid():
                self.expand_path(model.path_of(parent) or "")
            last = index.sibling(index.row(), len(COLUMNS) - 1)
            selection.select(index, last)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.selectionModel().select(selection, flags)
        target = current if current is not None else (paths[-1] if paths else None)
        if target is not None:
            index = model.index_for_path(target)
            if index.isValid():
                self.selectionModel().setCurrentIndex(
                    index, QItemSelectionModel.SelectionFlag.NoUpdate)
                self.scrollTo(index)

    def forget_state(self) -> None:
        """Forget remembered expansion and selection (a new document is shown)."""
        self._expanded_names.clear()
        self._saved_selected = []
        self._saved_current = None

    def reapply_state(self) -> None:
        """Expand the remembered rows and reselect after the rows were rebuilt (a filter)."""
        self._changing += 1
        self._restore_state("")

    def _on_expanded(self, index: object) -> None:
        model = self.tree_model()
        if model is not None and not self._changing:
            path = model.path_of(index)  # type: ignore[arg-type]
            if path is not None:
                self._expanded_names.add(path)

    def _on_collapsed(self, index: object) -> None:
        model = self.tree_model()
        if model is not None and not self._changing and not self._restoring:
            path = model.path_of(index)  # type: ignore[arg-type]
            if path is not None:
                self._expanded_names.discard(path)

    def _save_state(self, path: str) -> None:
        if self._restoring:
            return
        self._changing += 1
        selected = self.selected_paths()
        if selected:  # else keep what was selected before it vanished
            self._saved_selected = selected
            self._saved_current = self.current_path()

    def _restore_state(self, path: str) -> None:
        model = self.tree_model()
        if model is None or self._restoring:
            return
        self._restoring += 1
        try:
            for expanded in sorted(self._expanded_names, key=lambda p: (p.count("."), p)):
                index = model.index_for_path(expanded)
                if index.isValid() and not self.isExpanded(index):
                    self.expand(index)
            still = [p for p in self._saved_selected if model.index_for_path(p).isValid()]
            current = self._saved_current
            if current is not None and not model.index_for_path(current).isValid():
                current = None
            if still and not self.selected_paths():
                self.select_paths(still, current)
        finally:
            self._restoring -= 1
            self._changing = max(self._changing - 1, 0)
        self._on_selection_changed()

    def _on_selection_changed(self, *args: object) -> None:
        if self._restoring or self._changing:
            return
        selected = self.selected_paths()
        self._saved_selected = selected
        self._saved_current = self.current_path()
        self.selection_changed.emit(selected, self._saved_current)
