"""The Graph panel: the model's dataflow, linked both ways with the tree and the inspector.

The panel is a thin view over `engine.graph`: the engine traces, groups and lays out;
the panel draws the engine's Scene, keeps which groups are open and what is selected
(both by id, so they survive a rebuild), and turns gestures into engine calls. It
reads the document through the Session's public API and events only; edits go
through the window's EditActions (`Session.apply`), as the tree's do.

Building runs in background tasks with progress and Cancel: first a quick watched
forward pass on the meta twin (well under a second even for a 32-block language
model), drawn at once; then torch.export, whose graph replaces it when ready. After
a structural edit or an undo the graph is rebuilt the same way; the layouts of the
groups whose inside did not change are reused from the cache, and only the items of
the changed groups are replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.graph import build_graph
from engine.graph.groups import GroupTree
from engine.graph.layout import GraphLayout, group_label, node_label, shape_text
from engine.graph.overlays import (
    OVERLAYS,
    STATISTICS,
    BoxTensors,
    overlay_values,
    weight_statistics,
)
from engine.graph.twin import meta_twin

from ..dialogs import base
from ..listening import SessionListener
from ..task_runner import TaskRunner
from ..workers import Task
from .items import CACHE_DETAIL, LABEL_DETAIL, BoxItem, Edge, EdgeLayer, FrameItem
from .overlay_colors import legend, overlay_colors
from .view import GraphView

if TYPE_CHECKING:
    from engine.graph.model import Graph
    from engine.session import Session

#: a structural change waits this long for the next before the graph is rebuilt
REBUILD_DELAY_MS = 250
#: boxes are drawn from cached pixmaps when zoomed out only in graphs of more boxes
CACHE_FROM_BOXES = 300
#: below this zoom a big graph is drawn as one image of it (its largest side in pixels)
FAR_DETAIL = 0.15
OVERVIEW_SIDE = 8192


def prepare_graph(model: Any, twin: Any, method: str, expanded: set[str] | None,
                  cache: dict, progress: Any = None) -> dict[str, Any]:
    """Build, group and lay out a graph (in a worker thread; touches no widget).

    Returns the graph, its tree, its layout (sharing `cache`) and the open groups
    (`expanded`, or the tree's first view when None).
    """
    graph = build_graph(model, method=method, twin=twin, progress=progress)
    tree = GroupTree(graph)
    layout = GraphLayout(tree, cache)
    open_groups = tree.initial_expanded() if expanded is None else \
        {key for key in expanded if key in tree.groups} | {""}
    layout.arrange(open_groups)  # warms the cache: the GUI thread only draws
    return {"graph": graph, "tree": tree, "layout": layout, "expanded": open_groups}


class GraphPanel(QWidget):
    """The Graph dock's widget.

    Signals
    -------
    paths_selected(list) : tree paths (modules, tensors) of the graph's selection
    """

    paths_selected = Signal(list)

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.session: Session | None = None
        self._listener = SessionListener(
            self, structure_changed=self._on_structure_changed,
            flags_changed=self._on_flags_changed, tensors_changed=self._on_tensors_changed,
            history_changed=self._on_history_changed)
        self.graph: Graph | None = None
        self.tree: GroupTree | None = None
        self.layout_engine: GraphLayout | None = None
        self.expanded: set[str] = {""}
        self.boxes: dict[str, BoxItem] = {}
        self.frames: dict[str, FrameItem] = {}
        self.edges: list[Edge] = []
        self._cache: dict = {}
        self._task: Task | None = None
        self._phase = ""
        self._selected: str | None = None
        self._syncing = False
        self._ties: list[list[str]] = []
        self._statistics: dict[str, dict[str, float]] = {}
        self._matches: list[str] = []
        self._match_index = -1
        self._pending = False
        self._stats_task: Task | None = None
        self._cached = False  # boxes drawn from pixmaps (zoomed out)

        self.scene = QGraphicsScene(self)
        self.scene.selectionChanged.connect(self._on_scene_selection)
        self.view = GraphView(self.scene, self)
        self.view.key_navigation.connect(self.navigate)
        self.view.zoomed.connect(self._on_zoomed)
        # Far out (the whole of a big graph in view) the items are hidden and one image
        # of them is shown. (Items stay top-level: thousands of children under one parent
        # cost Qt a sort of the siblings at every paint.)
        self.overview = QGraphicsPixmapItem()
        self.overview.setVisible(False)
        self.overview.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene.addItem(self.overview)
        self._overview_stale = True
        self.edge_layer = EdgeLayer(self.scene, self.palette())
        self._items_shown = True
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._show_context_menu)
        self.view.mouseDoubleClickEvent = self._on_double_click  # type: ignore[method-assign]

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Find: name, op or type (Enter: next)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_search_text)
        self.search.returnPressed.connect(self.next_match)
        self.overlay = QComboBox(self)
        for name, text in OVERLAYS.items():
            self.overlay.addItem(text, name)
        self.overlay.setToolTip("Colour the boxes by Weightsmith's data")
        self.overlay.currentIndexChanged.connect(lambda _index: self.refresh_overlay())
        self.fit_button = self._button("Fit", "Show the whole graph (F)", self.view.fit)
        self.open_button = self._button("Open All", "Open every group",
                                        lambda: self.set_expanded(set(self.tree.groups))
                                        if self.tree else None)
        self.close_button = self._button("Close All", "Close every group but the top",
                                         lambda: self.set_expanded({""}))
        self.export_button = QToolButton(self)
        self.export_button.setText("Export")
        self.export_button.setToolTip("Save the graph as shown (SVG or PNG)")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        export_menu = QMenu(self.export_button)
        export_menu.addAction("SVG…", lambda: self.export_dialog("svg"))
        export_menu.addAction("PNG…", lambda: self.export_dialog("png"))
        self.export_button.setMenu(export_menu)
        self.legend = QLabel(self)
        self.status = QLabel(self)
        self.status.setWordWrap(False)
        self.tasks = TaskRunner(self)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.search, 2)
        top.addWidget(self.overlay, 1)
        for button in (self.fit_button, self.open_button, self.close_button,
                       self.export_button):
            top.addWidget(button)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.legend)
        bottom.addStretch(1)
        bottom.addWidget(self.status)
        bottom.addWidget(self.tasks)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)

        self._rebuild_timer = QTimer(self)
        self._rebuild_timer.setSingleShot(True)
        self._rebuild_timer.setInterval(REBUILD_DELAY_MS)
        self._rebuild_timer.timeout.connect(self.rebuild)
        self._update_enabled()

    def _button(self, text: str, tip: str, slot: Any) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda checked=False: slot())
        return button

    def sizeHint(self) -> QSize:
        return QSize(480, 360)

    # ------------------------------------------------------------------ the document
    def set_session(self, session: Session | None) -> None:
        """Show the graph of `session` (built in the background), or nothing."""
        self._stop_task(wait=session is None)
        self._rebuild_timer.stop()
        self.session = session
        self.graph = self.tree = self.layout_engine = None
        self.expanded = {""}
        self._cache = {}
        self._selected = None
        self._statistics = {}
        self._clear_items()
        self._listener.follow(session)
        if session is not None:
            self._ties = session.document.tie_groups()
        self._pending = False
        if session is None:
            self.status.setText("")
        elif not self._graphable():
            self.status.setText("No graph in checkpoint mode (attach an architecture)")
        elif self.isVisible():
            self.rebuild()
        else:
            self._pending = True  # traced when the dock is first shown
        self._update_enabled()

    def _graphable(self) -> bool:
        """Whether the document has a module to trace (a checkpoint has none)."""
        return self.session is not None and self.session.document.has_modules

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._pending:
            self._pending = False
            self.rebuild()

    def rebuild(self) -> None:
        """Trace the model again (quick pass first, then export) and redraw."""
        self._rebuild_timer.stop()
        session = self.session
        if session is None or not self._graphable():
            return
        self._stop_task()
        self._start("hooks", session)

    def _start(self, method: str, session: Session) -> None:
        # The twin is copied here, in the GUI thread, where nothing edits the model
        # meanwhile; the worker traces the copy only.
        twin = meta_twin(session.model)
        expanded = None if self.graph is None else set(self.expanded)
        self._phase = method
        text = "Drawing the graph…" if method == "hooks" else "Tracing with torch.export…"
        self._task = self.tasks.run(
            prepare_graph, session.model, twin, method if method == "hooks" else "auto",
            expanded, self._cache, name="graph", text=text,
            on_success=lambda result, session=session, method=method:
                self._on_built(session, method, result),
            on_failure=lambda message, session=session, method=method:
                self._on_failed(session, method, message),
            on_cancel=self._on_cancelled)

    def _stop_task(self, wait: bool = False) -> None:
        """Cancel the running build; with `wait` (the document is closing), also join
        its thread and the statistics', as the window's own tasks are joined."""
        for task in (self._task, self._stats_task if wait else None):
            if task is not None:
                task.cancel()
                if wait:
                    task.wait(5.0)
        self._task = None
        if wait:
            self._stats_task = None
        self.tasks.task = None
        self.tasks.hide()

    def _on_built(self, session: Session, method: str, result: dict[str, Any]) -> None:
        if session is not self.session:
            return
        self._task = None
        first = self.graph is None
        self.graph = result["graph"]
        self.tree = result["tree"]
        self.layout_engine = result["layout"]
        self.expanded = result["expanded"]
        self.redraw()
        if first:
            self.view.fit()
        self._show_status()
        self._update_enabled()
        if method == "hooks" and self.graph.method == "hooks":
            # Paint the quick graph now: once the export's thread runs, this thread
            # shares the interpreter with it, and a loaded machine would hold the first
            # paint back by as long as copying the twin and starting it take.
            self.view.viewport().repaint()
            self._start("auto", session)  # the exported graph replaces this one

    def _on_failed(self, session: Session, method: str, message: str) -> None:
        if session is not self.session:
            return
        self._task = None
        if self.graph is None:
            if method == "hooks":
                self._start("auto", session)  # export may trace what the pass could not
                return
            self.status.setText(message)
            self.status.setToolTip(message)
        else:
            self._show_status()  # the quick graph stays: export added nothing

    def _on_cancelled(self) -> None:
        self._task = None
        self.status.setText("Graph building cancelled")

    def _show_status(self) -> None:
        graph = self.graph
        if graph is None:
            return
        ops = sum(1 for node in graph if node.kind == "op")
        self.status.setText(f"{ops:,} ops by {graph.method} · {graph.example}")
        notes = "\n".join(graph.notes)
        self.status.setToolTip(notes or f"Traced by {graph.method}")

    # ------------------------------------------------------------------ events
    def _on_structure_changed(self, path: str) -> None:
        if self.isVisible():
            self._rebuild_timer.start()
        else:
            self._pending = True

    def _on_flags_changed(self, names: list[str]) -> None:
        ties = self.session.document.tie_groups() if self.session is not None else []
        if ties != self._ties:
            self._ties = ties  # a tie or untie changes which tensor an op reads
            self._rebuild_timer.start()
        self.refresh_overlay()

    def _on_tensors_changed(self, names: list[str]) -> None:
        self._statistics = {}
        if self.overlay.currentData() in (*STATISTICS, "changed", "dtype"):
            self.refresh_overlay()

    def _on_history_changed(self) -> None:
        if self.overlay.currentData() == "changed":
            self.refresh_overlay()

    # ------------------------------------------------------------------ drawing
    def _clear_items(self) -> None:
        for item in [*self.boxes.values(), *self.frames.values()]:
            self.scene.removeItem(item)
        self.boxes = {}
        self.frames = {}
        self.edges = []
        self.edge_layer.set_edges([])
        self.view.minimap.invalidate()
        self._overview_stale = True
        self.overview.setVisible(False)
        self._show_items(True)

    def _on_zoomed(self, zoom: float) -> None:
        self.edge_layer.show_labels(zoom >= LABEL_DETAIL)
        self._update_caching()
        self._update_overview()

    def _update_overview(self) -> None:
        """Far out, over a big graph, show one image of it instead of its items."""
        far = self.view.zoom() < FAR_DETAIL and len(self.boxes) > CACHE_FROM_BOXES
        if far and (self._overview_stale or not self.overview.isVisible()):
            if self._overview_stale:
                self._render_overview()
            self._show_items(False)
            self.overview.setVisible(True)
        elif not far and self.overview.isVisible():
            self.overview.setVisible(False)
            self._show_items(True)

    def _show_items(self, shown: bool) -> None:
        if shown == self._items_shown:
            return
        self._items_shown = shown
        for item in [*self.boxes.values(), *self.frames.values(), *self.edge_layer.items()]:
            item.setVisible(shown)

    def _render_overview(self) -> None:
        rect = self.scene.sceneRect()
        scale = min(OVERVIEW_SIDE / max(rect.width(), rect.height(), 1), FAR_DETAIL * 2)
        image = QImage(max(int(rect.width() * scale), 1), max(int(rect.height() * scale), 1),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        self.overview.setVisible(False)
        self._show_items(True)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.scene.render(painter, QRectF(image.rect()), rect)
        painter.end()
        self.overview.setPixmap(QPixmap.fromImage(image))
        self.overview.setScale(1 / scale)
        self.overview.setPos(rect.topLeft())
        self._overview_stale = False

    def _update_caching(self) -> None:
        # Only a big graph needs its boxes cached (a scaled pixmap blurs the text).
        cached = self.view.zoom() < CACHE_DETAIL and len(self.boxes) > CACHE_FROM_BOXES
        if cached != self._cached:
            self._cached = cached
            for item in self.boxes.values():
                item.set_cached(cached)

    def set_expanded(self, expanded: set[str]) -> None:
        """Open exactly these groups (and the root) and redraw."""
        if self.tree is None:
            return
        self.expanded = {key for key in expanded if key in self.tree.groups} | {""}
        self.redraw()

    def toggle(self, key: str) -> None:
        """Open a closed group or close an open one (the root stays open)."""
        if self.tree is None or key not in self.tree.groups or key == "":
            return
        if key in self.expanded:
            self.expanded -= {key, *self.tree.descendants(key)}
        else:
            self.expanded.add(key)
        self.redraw()

    def redraw(self) -> None:
        """Lay out the current expansion (cached per group) and sync the items by id:
        items whose box did not change are moved, not rebuilt."""
        if self.tree is None or self.layout_engine is None:
            return
        scene = self.layout_engine.arrange(self.expanded)
        tree = self.tree
        graph = tree.graph
        keep: set[str] = set()
        for box_id, box in scene.boxes.items():
            if box.kind == "group":
                group = tree.groups[box_id]
                title, subtitle = group_label(group)
                tip = self._group_tip(box_id)
            else:
                node = graph.nodes[box_id]
                title, subtitle, tip = node_label(node), "", self._node_tip(box_id)
            item = self.boxes.get(box_id)
            if item is None or item.kind != box.kind or item.title != title or \
                    item.subtitle != subtitle:
                if item is not None:
                    self.scene.removeItem(item)
                item = BoxItem(box, title, subtitle, tip)
                item.set_cached(self._cached)
                item.setVisible(self._items_shown)
                self.scene.addItem(item)
                self.boxes[box_id] = item
            else:
                item.place(box)
                item.setToolTip(tip)
            keep.add(box_id)
        for box_id in list(self.boxes):
            if box_id not in keep:
                self.scene.removeItem(self.boxes.pop(box_id))
        for key in list(self.frames):
            if key not in scene.frames:
                self.scene.removeItem(self.frames.pop(key))
        for key, box in scene.frames.items():
            name, kind = group_label(tree.groups[key])
            frame = self.frames.get(key)
            if frame is None or frame.title != f"{name} · {kind}":
                if frame is not None:
                    self.scene.removeItem(frame)
                frame = FrameItem(box, f"{name} · {kind}", self._group_tip(key), self.palette())
                frame.setVisible(self._items_shown)
                self.scene.addItem(frame)
                self.frames[key] = frame
            else:
                frame.place(box)
        edges = []
        for route in scene.routes:
            if len(route.points) < 2:
                continue
            node = graph.nodes.get(route.value)
            edges.append(Edge(route, shape_text(node.shape) if node is not None else ""))
        self.edges = edges
        self.edge_layer.set_edges(edges)
        self.edge_layer.show_labels(self.view.zoom() >= LABEL_DETAIL)
        self._update_caching()
        self.scene.setSceneRect(QRectF(-40, -40, scene.width + 80, scene.height + 80))
        self._restore_selection()
        self.refresh_overlay()
        self._mark_matches()
        self.view.minimap.invalidate()
        self._overview_stale = True
        self._update_overview()

    def _node_tip(self, node_id: str) -> str:
        node = self.tree.graph.nodes[node_id]
        lines = [f"{node.op}  ({node.id})"]
        if node.target and node.target != node.op:
            lines.append(node.target)
        if node.module:
            lines.append(f"in {node.module}")
        if node.shape is not None:
            lines.append(f"{shape_text(node.shape)} {node.dtype}")
        if len(node.names) > 1:
            lines.append("tied: " + ", ".join(node.names))
        return "\n".join(lines)

    def _group_tip(self, key: str) -> str:
        group = self.tree.groups[key]
        lines = [f"{group.module or 'model'}: {group.type}", f"{group.size:,} nodes inside"]
        if group.identical_to:
            lines.append(f"identical to {group.identical_to}")
        if group.repeats > 1:
            lines.append(f"{group.repeats} identical siblings")
        lines.append("Double-click to open" if key not in self.expanded else
                     "Double-click the title to close")
        return "\n".join(lines)

    def item_of(self, key: str) -> BoxItem | FrameItem | None:
        """The drawn item of a box or an open group."""
        return self.boxes.get(key) or self.frames.get(key)

    # ------------------------------------------------------------------ overlays
    def refresh_overlay(self) -> None:
        """Colour the boxes by the chosen overlay (statistics in the background)."""
        name = self.overlay.currentData()
        for item in [*self.boxes.values(), *self.frames.values()]:
            item.overlay = None
        self.legend.setText(legend(name))
        session = self.session
        if session is None or self.tree is None or not self._graphable() or name == "none":
            self._repaint_items()
            return
        statistics = None
        if name in STATISTICS:
            statistics = self._statistics.get(name)
            if statistics is None:
                self._compute_statistics(name)
                return
        boxes = BoxTensors(session, self.tree)
        # Boxes only: an open group's frame would tint everything inside it.
        values = overlay_values(name, session, boxes, list(self.boxes), statistics)
        for key, color in overlay_colors(name, values).items():
            item = self.item_of(key)
            if item is not None:
                item.overlay = color
        self._repaint_items()

    def _repaint_items(self) -> None:
        for item in self.boxes.values():
            item.update()
        for frame in self.frames.values():
            frame.restyle()
        self.view.minimap.invalidate()
        self._overview_stale = True
        self._update_overview()

    def _compute_statistics(self, name: str) -> None:
        session = self.session
        if session is None:
            return
        task = Task(weight_statistics, session, name, name="graph statistics",
                    parent=self)
        task.succeeded.connect(lambda values, session=session, name=name:
                               self._on_statistics(session, name, values))
        task.done.connect(task.deleteLater)
        task.start()
        self._stats_task = task

    def _on_statistics(self, session: Session, name: str, values: dict[str, float]) -> None:
        if session is self.session:
            self._statistics[name] = values
            if self.overlay.currentData() == name:
                self.refresh_overlay()

    # ------------------------------------------------------------------ selection
    def _restyle_frames(self) -> None:
        # A frame is drawn by Qt: its pen follows the selection here, not in paint().
        for frame in self.frames.values():
            if frame.styled_selected != frame.isSelected():
                frame.restyle()

    def tree_paths_of(self, key: str) -> list[str]:
        """The tree rows a box stands for: a module, a tensor (nothing for an input)."""
        if self.tree is None:
            return []
        if key in self.tree.groups:
            module = self.tree.groups[key].module
            return [module] if module else []
        node = self.tree.graph.nodes.get(key)
        if node is None or node.kind == "input":
            return []
        if node.kind in ("parameter", "buffer"):
            return [node.id]
        return [node.module] if node.module else []

    def _on_scene_selection(self) -> None:
        self._restyle_frames()
        if self._syncing:
            return
        chosen = [item for item in self.scene.selectedItems()
                  if isinstance(item, BoxItem | FrameItem)]
        self._selected = chosen[-1].item_id if chosen else None
        self._highlight_edges()
        paths: list[str] = []
        for item in chosen:
            paths += [p for p in self.tree_paths_of(item.item_id) if p not in paths]
        if paths:
            self._syncing = True
            try:
                self.paths_selected.emit(paths)
            finally:
                self._syncing = False

    def select(self, key: str | None, *, center: bool = True) -> None:
        """Select the box or frame `key` without telling the tree (it asked)."""
        self._syncing = True
        try:
            self.scene.clearSelection()
            item = self.item_of(key) if key is not None else None
            if item is not None:
                item.setSelected(True)
                if center:
                    self.view.center_on_rect(item.sceneBoundingRect())
            self._selected = key if item is not None else None
        finally:
            self._syncing = False
        self._highlight_edges()

    def _restore_selection(self) -> None:
        if self._selected is not None:
            self.select(self._selected, center=False)

    def reveal(self, path: str | None) -> bool:
        """Show the box of a tree path (a module or a tensor), opening the groups above
        it, select and highlight it; False when the graph has no such box."""
        if path is None or self.tree is None or self.session is None or self._syncing:
            return False
        key = self.key_of_path(path)
        if key is None:
            return False
        wanted = self.tree.reveal(key)
        if not wanted <= self.expanded:
            self.expanded |= wanted
            self.redraw()
        self.select(key)
        return True

    def key_of_path(self, path: str) -> str | None:
        """The graph box of a tree path: a tensor's node, or a module's (first) group."""
        tree, session = self.tree, self.session
        if tree is None or session is None:
            return None
        document = session.document
        if document.is_tensor(path):
            canonical = document.aliases(document.canonical_name(path))[0]
            return canonical if canonical in tree.graph.nodes else None
        keys = tree.keys_of_module(path)
        if keys:
            return keys[0]
        return "" if path == "" else None

    def _highlight_edges(self) -> None:
        selected = self._selected
        changed = False
        for edge in self.edges:
            on = selected is not None and selected in (edge.source, edge.target)
            if edge.highlighted != on:
                edge.highlighted = on
                changed = True
        if changed:
            self.edge_layer.refresh_highlight()

    # ------------------------------------------------------------------ gestures
    def _on_double_click(self, event: Any) -> None:
        item = self.view.itemAt(event.position().toPoint())
        if (isinstance(item, BoxItem) and item.kind == "group") or isinstance(item, FrameItem):
            self.toggle(item.item_id)
            self.select(item.item_id, center=False)
        event.accept()

    def navigate(self, move: str) -> None:
        """Move the selection along the drawn graph, or open/close the selected group."""
        key = self._selected
        if key is None or self.tree is None:
            first = next(iter(self.boxes), None)
            if first is not None:
                self.select(first)
                self._on_scene_selection_emit()
            return
        if move == "toggle":
            if key in self.tree.groups:
                self.toggle(key)
                self.select(key)
            return
        current = self.item_of(key)
        if current is None:
            return
        candidates: list[str] = []
        if move == "down":
            candidates = [edge.target for edge in self.edges if edge.source == key]
        elif move == "up":
            candidates = [edge.source for edge in self.edges if edge.target == key]
        else:
            row = current.sceneBoundingRect().center().y()
            x = current.sceneBoundingRect().center().x()
            same_row = [(item.sceneBoundingRect().center().x(), box_id)
                        for box_id, item in self.boxes.items()
                        if abs(item.sceneBoundingRect().center().y() - row) < 12
                        and box_id != key]
            if move == "left":
                candidates = [box_id for cx, box_id in sorted(same_row, reverse=True) if cx < x]
            else:
                candidates = [box_id for cx, box_id in sorted(same_row) if cx > x]
        if candidates:
            self.select(candidates[0])
            self._on_scene_selection_emit()

    def _on_scene_selection_emit(self) -> None:
        # A selection made by the keyboard is the user's: tell the tree.
        paths = self.tree_paths_of(self._selected) if self._selected else []
        if paths:
            self.paths_selected.emit(paths)

    def _show_context_menu(self, position: Any) -> None:
        item = self.view.itemAt(position)
        if not isinstance(item, BoxItem | FrameItem):
            return
        if not item.isSelected():
            self.scene.clearSelection()
            item.setSelected(True)
        menu = self.context_menu(item.item_id)
        if not menu.isEmpty():
            menu.exec(self.view.viewport().mapToGlobal(position))
        menu.deleteLater()

    def context_menu(self, key: str) -> QMenu:
        """The menu of a box: open or close it, then the tree's edit actions for what it
        stands for (the tree selection follows the graph's, so they act on it)."""
        menu = QMenu(self)
        if self.tree is not None and key in self.tree.groups and key:
            text = "Close Group" if key in self.expanded else "Open Group"
            menu.addAction(text, lambda key=key: self.toggle(key))
            menu.addSeparator()
        actions = getattr(self.window, "edit_actions", None)
        if actions is not None and self.tree_paths_of(key):
            actions.update_enabled()
            actions.fill_context_menu(menu)
        return menu

    # ------------------------------------------------------------------ search
    def _on_search_text(self, text: str) -> None:
        self._matches = self.find(text)
        self._match_index = -1
        self._mark_matches()
        if text.strip():
            self.status.setText(f"{len(self._matches):,} match(es) for '{text.strip()}'")
        else:
            self._show_status()

    def find(self, text: str) -> list[str]:
        """Boxes whose id, op, module or type contains `text` (case-insensitive), in
        graph order, the groups first; closed or not."""
        needle = text.strip().lower()
        if not needle or self.tree is None:
            return []
        tree = self.tree
        groups = [key for key, group in tree.groups.items() if key and
                  (needle in key.lower() or needle in group.type.lower())]
        nodes = [node.id for node in tree.graph
                 if needle in node.id.lower() or needle in node.op.lower()]
        return groups + nodes

    def next_match(self) -> None:
        """Reveal and select the next match of the search text."""
        if not self._matches:
            return
        self._match_index = (self._match_index + 1) % len(self._matches)
        key = self._matches[self._match_index]
        wanted = self.tree.reveal(key) if self.tree is not None else set()
        if not wanted <= self.expanded:
            self.expanded |= wanted
            self.redraw()
        self.select(key)
        self._on_scene_selection_emit()
        self.status.setText(f"{self._match_index + 1} of {len(self._matches):,}: {key}")

    def _mark_matches(self) -> None:
        matched = set(self._matches)
        for key, item in self.boxes.items():
            on = key in matched
            if item.matched != on:
                item.matched = on
                item.update()

    # ------------------------------------------------------------------ export
    def export_dialog(self, kind: str) -> None:
        """Ask where, then save the graph as shown."""
        if not self.boxes:
            return
        filters = "SVG drawing (*.svg)" if kind == "svg" else "PNG image (*.png)"
        path = base.choose_save_path(self, f"Export Graph as {kind.upper()}",
                                     self.window.settings.last_folder("export")
                                     if hasattr(self.window, "settings") else "", filters)
        if not path:
            return
        if not path.lower().endswith(f".{kind}"):
            path += f".{kind}"
        try:
            self.export(path)
        except OSError as error:
            base.show_error(self, f"{path}: {error.strerror or error}")

    def export(self, path: str) -> None:
        """Write the graph as shown (open groups, overlay, selection) to an .svg or .png
        file, atomically."""
        rect = self.scene.sceneRect()
        # Boxes paint themselves for the file, as text and shapes, not cached pixmaps,
        # and the items are drawn, not the far-out image of them.
        for item in self.boxes.values():
            item.setCacheMode(item.CacheMode.NoCache)
        far = self.overview.isVisible()
        self.overview.setVisible(False)
        self._show_items(True)
        try:
            self._render_to(path, rect)
        finally:
            for item in self.boxes.values():
                item.refresh_cache()
            self.overview.setVisible(far)
            self._show_items(not far)

    def _render_to(self, path: str, rect: QRectF) -> None:
        from engine.io.atomic import atomic_path

        with atomic_path(path) as temp:
            if path.lower().endswith(".svg"):
                from PySide6.QtSvg import QSvgGenerator

                generator = QSvgGenerator()
                generator.setFileName(str(temp))
                generator.setSize(rect.size().toSize())
                generator.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
                generator.setTitle("Model graph")
                painter = QPainter(generator)
                self.scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
                painter.end()
            else:
                scale = min(2.0, 16000 / max(rect.width(), rect.height(), 1))
                image = QImage(int(rect.width() * scale), int(rect.height() * scale),
                               QImage.Format.Format_ARGB32)
                image.fill(self.palette().color(self.backgroundRole()))
                painter = QPainter(image)
                painter.setRenderHints(QPainter.RenderHint.Antialiasing |
                                       QPainter.RenderHint.TextAntialiasing)
                self.scene.render(painter, QRectF(0, 0, image.width(), image.height()), rect)
                painter.end()
                if not image.save(str(temp), "PNG"):
                    raise OSError(f"could not write {path}")

    # ------------------------------------------------------------------ state
    def _update_enabled(self) -> None:
        has = self.tree is not None
        for widget in (self.fit_button, self.open_button, self.close_button,
                       self.export_button, self.search, self.overlay):
            widget.setEnabled(has)

