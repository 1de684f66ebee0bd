"""The module tree as a lazy QAbstractItemModel, keyed by dotted name.

Rows are built one level at a time when a view expands a node (`canFetchMore` /
`fetchMore`, in batches for very wide containers); `hasChildren` answers without
building anything. Each materialized row is a `_Node` kept in a cache owned by the
model (`createIndex` gets the node, never a bare int). `data()` reads the node's
`NodeInfo`, computed once by `engine.tree.TreeIndex` and cached until an event
names the node.

Engine events map onto Qt's model protocol:

- `structure_about_to_change(path)` / `structure_changed(path)`: the rows under
  `path` are removed (begin/endRemoveRows) before the engine mutates, and as many as
  were shown are inserted again afterwards; the root ("") resets the model.
- `tensors_changed(names)` / `flags_changed(names)`: `dataChanged` for each named row
  (and its ancestors, whose counts may change), only where a row is materialized.

Views keep their expansion and selection as dotted names around structure changes
through `subtree_about_to_change` / `subtree_changed` (see gui.tree_view).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont

from engine.tree import NodeInfo, TreeIndex, ancestors

from .icons import node_icon
from .listening import SessionListener

if TYPE_CHECKING:
    from engine.filtering import FilterResult
    from engine.session import Session

ModelIndex = QModelIndex | QPersistentModelIndex

#: column headers; the order is the column number
COLUMNS = ("Name", "Type", "Shape", "Dtype", "Parameters", "Trainable", "Tie group")
NAME, TYPE, SHAPE, DTYPE, PARAMETERS, TRAINABLE, TIES = range(len(COLUMNS))
#: rows added per fetchMore: views ask again until their viewport is full, so a small
#: batch keeps the rows built close to the rows shown, even under a 100,000-wide level
BATCH = 32
#: the role that returns a row's dotted path
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
#: the role that returns a row's NodeInfo
INFO_ROLE = Qt.ItemDataRole.UserRole + 2


class _Node:
    """One materialized row: its path, its place, and the children fetched so far."""

    __slots__ = ("children", "info", "parent", "path", "pending", "row")

    def __init__(self, path: str | None, parent: _Node | None, row: int) -> None:
        self.path = path  # None for the invisible root
        self.parent = parent
        self.row = row
        self.children: list[_Node] | None = None  # None: never fetched
        self.pending: list[str] = []  # child paths not fetched yet
        self.info: NodeInfo | None = None


class TreeModel(QAbstractItemModel):
    """A lazy tree over a Session; see the module docstring.

    Signals
    -------
    subtree_about_to_change(str) : rows under this path are about to be rebuilt
    subtree_changed(str) : they have been rebuilt (restore expansion and selection)
    """

    subtree_about_to_change = Signal(str)
    subtree_changed = Signal(str)

    def __init__(self, session: Session | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session: Session | None = None
        self._listener = SessionListener(
            self, structure_about_to_change=self._on_structure_about_to_change,
            structure_changed=self._on_structure_changed, tensors_changed=self._on_tensors_changed,
            flags_changed=self._on_flags_changed)
        self.tree: TreeIndex | None = None
        self._root = _Node(None, None, 0)
        self._nodes: dict[str, _Node] = {}
        self._filter: FilterResult | None = None
        self._refetch: dict[str, int] = {}
        self._resetting = False
        # Rows under change (between the engine's paired events) and a fetch in
        # progress: neither may be fetched again by a view reacting to our signals.
        self._changing: set[str] = set()
        self._fetching = False
        self._bold = QFont()
        self._bold.setBold(True)
        if session is not None:
            self.set_session(session)

    # ------------------------------------------------------------------ session
    def set_session(self, session: Session | None, tree: TreeIndex | None = None) -> None:
        """Show `session` (None: nothing); disconnects from the previous session.

        `tree` may be an index of `session` prepared (warmed) in a worker thread.
        """
        self.beginResetModel()
        self.session = session
        if session is None:
            self.tree = None
        elif tree is not None and tree.session is session:
            self.tree = tree
        else:
            self.tree = TreeIndex(session)
        self._filter = None
        self._clear_nodes()
        self._listener.follow(session)
        self.endResetModel()

    def close(self) -> None:
        """Stop listening to the session (the view is going away)."""
        self.set_session(None)

    def _clear_nodes(self) -> None:
        self._root = _Node(None, None, 0)
        self._nodes = {}

    # ------------------------------------------------------------------ filter
    def set_filter(self, result: FilterResult | None) -> None:
        """Show only the rows `result` lets through (None: every row); rebuilds the rows."""
        self._remove_all_rows()
        self._filter = result
        self._insert_top_rows()

    def _remove_all_rows(self) -> None:
        # Rows are removed and inserted rather than the model reset: a reset makes
        # views (and the model tester) fetch again before the model is consistent.
        count = len(self._root.children or [])
        if count:
            self.beginRemoveRows(QModelIndex(), 0, count - 1)
            self._nodes.clear()
            self._root.children = []
            self._root.pending = []
            self.endRemoveRows()
        else:
            self._clear_nodes()
            self._root.children = []

    def _insert_top_rows(self) -> None:
        if self.tree is None:
            return
        self._root.children = []
        self._root.pending = self._child_paths(self._root)
        self._fetch(QModelIndex(), self._root, BATCH)

    @property
    def filter(self) -> FilterResult | None:
        return self._filter

    # ------------------------------------------------------------------ node helpers
    def materialized_count(self) -> int:
        """How many rows exist as nodes (for tests and benchmarks of laziness)."""
        return len(self._nodes)

    def materialized_paths(self) -> list[str]:
        """Dotted paths of the materialized rows, in the order they are shown."""
        result: list[str] = []
        stack = list(reversed(self._root.children or []))
        while stack:
            node = stack.pop()
            assert node.path is not None
            result.append(node.path)
            stack.extend(reversed(node.children or []))
        return result

    def _node(self, index: ModelIndex) -> _Node:
        return index.internalPointer() if index.isValid() else self._root

    def _child_paths(self, node: _Node) -> list[str]:
        assert self.tree is not None
        if node.path is None:  # the invisible root: the model itself, or the top level
            paths = [""] if self.tree.root_kind == "module" else self.tree.child_names("")
        else:
            paths = self.tree.child_names(node.path)
        if self._filter is not None:
            return [path for path in paths if self._filter.shows(path)]
        return list(paths)  # a copy: fetching consumes it, the index keeps its own

    def _has_child_rows(self, node: _Node) -> bool:
        if node.children:
            return True
        if self.tree is None or node.path in self._changing:
            return False
        if node.path is None:
            return True
        if self._filter is not None and not self._filter.shows_all_below(node.path):
            return self._filter.has_shown_children(node.path)
        return self.tree.has_children(node.path)

    def _info(self, node: _Node) -> NodeInfo:
        if node.info is None:
            assert self.tree is not None
            assert node.path is not None
            node.info = self.tree.info(node.path)
        return node.info

    def index_of(self, path: str, column: int = 0) -> QModelIndex:
        """The index of the row for `path` if it is materialized, else an invalid index."""
        node = self._nodes.get(path)
        if node is None:
            return QModelIndex()
        return self.createIndex(node.row, column, node)

    def index_for_path(self, path: str) -> QModelIndex:
        """The index for `path`, fetching the rows on the way (invalid if it does not exist).

        Only the ancestors' levels are built, in batches, until the row appears.
        """
        if self.tree is None:
            return QModelIndex()
        node = self._nodes.get(path)
        if node is not None:
            return self.createIndex(node.row, 0, node)
        if path in self._changing or not self.tree.exists(path) or (
                self._filter is not None and not self._filter.shows(path)):
            return QModelIndex()  # never fetch a whole wide level looking for nothing
        chain = [path, *ancestors(path)]
        if self.tree.root_kind != "module":
            chain = chain[:-1]  # checkpoint mode has no row for the root
        parent = QModelIndex()
        for step in reversed(chain):
            node = self._nodes.get(step)
            while node is None and self.canFetchMore(parent):
                self.fetchMore(parent)
                node = self._nodes.get(step)
            if node is None:
                return QModelIndex()
            parent = self.createIndex(node.row, 0, node)
        return parent

    def path_of(self, index: ModelIndex) -> str | None:
        """The dotted path of an index's row (None for the invisible root)."""
        return self._node(index).path

    def info_of(self, index: ModelIndex) -> NodeInfo | None:
        """The facts of an index's row."""
        node = self._node(index)
        return None if node.path is None else self._info(node)

    # ------------------------------------------------------------------ Qt protocol
    def index(self, row: int, column: int, parent: ModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if column < 0 or column >= len(COLUMNS) or row < 0:
            return QModelIndex()
        node = self._node(parent)
        if node.children is None or row >= len(node.children):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: ModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid():
            return QModelIndex()
        node: _Node = index.internalPointer()
        parent = node.parent
        if parent is None or parent.path is None:
            return QModelIndex()
        return self.createIndex(parent.row, 0, parent)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return 0
        children = self._node(parent).children
        return 0 if children is None else len(children)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def hasChildren(self, parent: ModelIndex = QModelIndex()) -> bool:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return False
        return self._has_child_rows(self._node(parent))

    def canFetchMore(self, parent: ModelIndex) -> bool:
        if self.tree is None or self._fetching or (parent.isValid() and parent.column() != 0):
            return False
        node = self._node(parent)
        if node.children is None:
            return self._has_child_rows(node)
        return bool(node.pending)

    def fetchMore(self, parent: ModelIndex) -> None:
        if not self.canFetchMore(parent):
            return
        node = self._node(parent)
        if node.children is None:
            node.children = []
            node.pending = self._child_paths(node)
        self._fetch(parent, node, BATCH)

    def _fetch(self, parent: ModelIndex, node: _Node, count: int) -> None:
        assert node.children is not None
        batch = node.pending[:count]
        if not batch:
            return
        first = len(node.children)
        self._fetching = True
        try:
            self.beginInsertRows(parent, first, first + len(batch) - 1)
            del node.pending[: len(batch)]
            for offset, path in enumerate(batch):
                child = _Node(path, node, first + offset)
                node.children.append(child)
                self._nodes[path] = child
            self.endInsertRows()
        finally:
            self._fetching = False

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section == PARAMETERS:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node: _Node = index.internalPointer()
        info = self._info(node)
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(info, column)
        if role == Qt.ItemDataRole.DecorationRole and column == NAME:
            return node_icon(info.kind, info.frozen and info.is_tensor, info.tied)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(info)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == PARAMETERS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and column == NAME and self._filter is not None \
                and self._filter.matches(info.path):
            return self._bold
        if role == PATH_ROLE:
            return info.path
        if role == INFO_ROLE:
            return info
        return None

    # ------------------------------------------------------------------ engine events
    def _on_structure_about_to_change(self, path: str) -> None:
        self.subtree_about_to_change.emit(path)
        # The root's children, or anything while a filter is on (what matches may
        # change), are rebuilt from the top; views restore their state by name.
        if path == "" or self._filter is not None:
            self._resetting = True
            self._remove_all_rows()
            return
        node = self._nodes.get(path)
        if node is None:
            return
        if not node.children:
            node.children = None
            node.pending = []
            return
        # The rows shown now are removed before the engine changes anything, so the
        # model never describes a half-changed document; they come back on "changed".
        self._refetch[path] = len(node.children)
        self._changing.add(path)
        self.beginRemoveRows(self.createIndex(node.row, 0, node), 0, len(node.children) - 1)
        self._forget_below(node)
        node.children = []
        node.pending = []
        self.endRemoveRows()

    def _on_structure_changed(self, path: str) -> None:
        assert self.tree is not None
        assert self.session is not None
        if self._resetting:
            self._resetting = False
            self.tree = TreeIndex(self.session)  # the mode itself may have changed
            if self._filter is not None:
                self._filter.refresh(self.session)
            self._insert_top_rows()
            self.subtree_changed.emit(path)
            return
        self.tree.invalidate_subtree(path)
        self._changing.discard(path)
        node = self._nodes.get(path)
        shown = self._refetch.pop(path, 0)
        if node is not None and shown:
            node.children = []
            node.pending = self._child_paths(node)
            self._fetch(self.createIndex(node.row, 0, node), node, max(shown, BATCH))
        self._refresh_rows([path, *ancestors(path)])
        self._refresh_ties()
        self.subtree_changed.emit(path)

    def _refresh_ties(self) -> None:
        # A module tie or a replace can make rows far from `path` (the other members
        # of a tie group and their tensors) tied or untied: refresh those shown.
        assert self.tree is not None
        tied_now = self.tree.tied_paths()
        stale = [path for path, node in self._nodes.items()
                 if node.info is not None and (node.info.tied or path in tied_now)]
        self.tree.forget(stale)
        self._refresh_rows(stale)

    def _forget_below(self, node: _Node) -> None:
        stack = list(node.children or [])
        while stack:
            child = stack.pop()
            assert child.path is not None
            self._nodes.pop(child.path, None)
            stack.extend(child.children or [])

    def _on_tensors_changed(self, names: list[str]) -> None:
        assert self.tree is not None
        self._refresh_rows(self.tree.invalidate_names(names))

    def _on_flags_changed(self, names: list[str]) -> None:
        assert self.tree is not None
        self.tree.invalidate_ties(names)
        self._refresh_rows(self.tree.invalidate_names(names))

    def _refresh_rows(self, paths: Any) -> None:
        """Emit dataChanged for the materialized rows among `paths` (their facts are
        already dropped from the index)."""
        for path in paths:
            node = self._nodes.get(path)
            if node is None:
                continue
            node.info = None
            self.dataChanged.emit(self.createIndex(node.row, 0, node),
                                  self.createIndex(node.row, len(COLUMNS) - 1, node))


def _display(info: NodeInfo, column: int) -> str:
    if column == NAME:
        return info.name
    if column == TYPE:
        return info.type_name
    if column == SHAPE:
        return info.shape_text
    if column == DTYPE:
        return info.dtype
    if column == PARAMETERS:
        return f"{info.parameters:,}" if info.parameters or info.is_tensor else ""
    if column == TRAINABLE:
        return info.trainable
    if column == TIES:
        return ", ".join(info.tied_with)
    return ""


def _tooltip(info: NodeInfo) -> str:
    lines = [info.path or "(the whole model)"]
    if info.is_tensor:
        lines.append(f"{info.type_name} {info.shape_text} {info.dtype}")
    if info.frozen:
        lines.append("frozen (requires_grad is off)")
    if info.tied:
        lines.append("shared with " + ", ".join(info.tied_with))
    return "\n".join(lines)

