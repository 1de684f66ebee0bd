"""The tree view: keeps expansion and selection as dotted names across edits and undo.

The model rebuilds rows under a path on a structure change; this view records which
rows under it were expanded and selected (by dotted name, never as QModelIndex) just
before, and puts them back just after, fetching rows on the way when needed.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView, QWidget

from .tree_model import COLUMNS, NAME, TreeModel

#: starting widths of the columns, in average character widths
_WIDTHS = {"Name": 30, "Type": 14, "Shape": 14, "Dtype": 9, "Parameters": 11, "Trainable": 8,
           "Tie group": 16}
#: the widest a column grows to fit its content before its text is elided, in characters
_MAX_CHARS = {"Name": 80, "Type": 32, "Shape": 28, "Dtype": 12, "Parameters": 16,
              "Trainable": 9, "Tie group": 60}
#: the narrowest a column shrinks to when the window is too narrow, in characters
_MIN_CHARS = {"Name": 16, "Type": 9, "Shape": 8, "Dtype": 7, "Parameters": 8,
              "Trainable": 6, "Tie group": 8}
#: rows Expand All builds at most (a 100,000-tensor level stays lazy)
EXPAND_LIMIT = 5_000


def fit_widths(desired: list[int], floors: list[int], available: int,
               grow: int = NAME) -> list[int]:
    """Column widths that show each column's content when there is room.

    When the `desired` widths fit in `available` pixels, each column gets its own and
    column `grow` gets what is left over. When they do not, each column gives up
    room in proportion to what it has above its floor, so the widest contents are
    elided first and no column falls below its floor (past that, the view scrolls).
    """
    floors = [min(floor, want) for floor, want in zip(floors, desired, strict=True)]
    total = sum(desired)
    if total <= available:
        widths = list(desired)
        widths[grow] += available - total
        return widths
    spare = [want - floor for want, floor in zip(desired, floors, strict=True)]
    excess, giving = total - available, sum(spare)
    if giving <= excess:
        return floors
    widths = [want - (room * excess + giving - 1) // giving
              for want, room in zip(desired, spare, strict=True)]
    return [max(width, floor) for width, floor in zip(widths, floors, strict=True)]


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
        # Columns follow their content (the rows on screen), once per event-loop turn.
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self.fit_columns)
        self._content: list[int] = []  # the widest content seen per column (this document)
        self._user_sized: set[int] = set()
        self._fitting = False
        self.expanded.connect(self._schedule_fit)
        self.collapsed.connect(self._schedule_fit)
        self.verticalScrollBar().valueChanged.connect(self._schedule_fit)

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
        model.modelReset.connect(self._forget_content)
        for changed in (model.rowsInserted, model.dataChanged, model.layoutChanged):
            changed.connect(self._schedule_fit)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(0)  # only the rows on screen: the tree stays lazy
        header.sectionResized.connect(self._on_section_resized)
        metrics = self.fontMetrics()
        self._fitting = True
        for column, title in enumerate(COLUMNS):
            header.resizeSection(column, metrics.averageCharWidth() * _WIDTHS[title] + 12)
        self._fitting = False
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._schedule_fit()

    # ------------------------------------------------------------------ columns
    def _schedule_fit(self, *args: object) -> None:
        self._fit_timer.start()

    def _forget_content(self) -> None:
        self._content = []
        self._schedule_fit()

    def _on_section_resized(self, column: int, old: int, new: int) -> None:
        if not self._fitting:
            self._user_sized.add(column)  # the user's width wins from now on

    def fit_columns(self) -> None:
        """Size the columns to their content (the rows on screen, and the header).

        A column only grows while a document is shown (scrolling never makes it jump
        back); the Name column takes the room left over; when the window is too narrow,
        the widest columns are elided first. A column the user resized keeps its width.
        """
        self._fit_timer.stop()
        model = self.tree_model()
        if model is None:
            return
        header = self.header()
        char = self.fontMetrics().averageCharWidth()
        if len(self._content) != len(COLUMNS):
            self._content = [0] * len(COLUMNS)
        desired, floors = [], []
        for column, title in enumerate(COLUMNS):
            if column in self._user_sized:
                desired.append(header.sectionSize(column))
                floors.append(header.sectionSize(column))
                continue
            content = max(self.sizeHintForColumn(column), header.sectionSizeHint(column))
            self._content[column] = max(self._content[column], content)
            desired.append(min(self._content[column], _MAX_CHARS[title] * char + 16))
            floors.append(min(_MIN_CHARS[title] * char + 12, desired[-1]))
        widths = fit_widths(desired, floors, self.viewport().width())
        self._fitting = True
        try:
            for column, width in enumerate(widths):
                if header.sectionSize(column) != width:
                    header.resizeSection(column, width)
        finally:
            self._fitting = False

    # ------------------------------------------------------------------ copy, expand
    def copy_paths(self) -> None:
        """Put the dotted paths of the selected rows on the clipboard, one per line."""
        paths = [path for path in self.selected_paths() if path]
        if paths:
            QGuiApplication.clipboard().setText("\n".join(paths))

    def copy_shapes(self) -> None:
        """Put the shapes of the selected tensors on the clipboard, one per line."""
        model = self.tree_model()
        if model is None:
            return
        shapes = []
        for path in self.selected_paths():
            info = model.info_of(model.index_of(path))
            if info is not None and info.is_tensor:
                shapes.append(info.shape_text)
        if shapes:
            QGuiApplication.clipboard().setText("\n".join(shapes))

    def expand_below(self, path: str, limit: int = EXPAND_LIMIT) -> bool:
        """Expand `path` and every row below it (fetching them), at most `limit` rows.

        Returns False when the limit stopped it (the rest stays as it was).
        """
        model = self.tree_model()
        if model is None:
            return True
        start = model.index_for_path(path)
        if path and not start.isValid():
            return True
        built = 0
        stack = [start] if start.isValid() else [
            model.index(row, 0) for row in reversed(range(model.rowCount()))]
        while stack:
            index = stack.pop()
            if not model.hasChildren(index):
                continue
            while model.canFetchMore(index) and built < limit:
                model.fetchMore(index)
                built += model.rowCount(index)
            self.expand(index)
            if built >= limit:
                return False
            stack.extend(model.index(row, 0, index)
                         for row in reversed(range(model.rowCount(index))))
        return True

    def collapse_below(self, path: str) -> None:
        """Collapse `path` and every row below it."""
        model = self.tree_model()
        if model is None:
            return
        index = model.index_for_path(path)
        if not index.isValid():
            return
        prefix = f"{path}." if path else ""
        self.collapse(index)
        for expanded in [name for name in self._expanded_names
                         if name == path or name.startswith(prefix)]:
            self.collapse(model.index_of(expanded))
            self._expanded_names.discard(expanded)

    def collapse_all(self) -> None:
        """Collapse every row; a model's root row stays open to show the top level."""
        self.collapseAll()  # emits no `collapsed`: forget the names here
        self._expanded_names.clear()
        model = self.tree_model()
        if model is not None and model.tree is not None and model.tree.root_kind == "module":
            self.expand_path("")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_paths()  # the dotted path, not the row's short name
            event.accept()
            return
        if event.key() == Qt.Key.Key_Asterisk:
            # Qt's own "*" only expands the rows already fetched: one level of a lazy tree.
            path = self.current_path()
            if path is not None:
                self.expand_below(path)
            event.accept()
            return
        super().keyPressEvent(event)

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
        self._schedule_fit()

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
