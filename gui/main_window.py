"""The main window: the module tree, docks around it, menus, toolbar and status bar.

The window wires one Session at a time to its views (tree, inspector, history,
plots, training) and disconnects them when the document changes or the window
closes. It performs no edit itself: edits come from `gui.actions.EditActions`,
file work from `gui.file_actions.FileActions`, both through the engine.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QScrollArea,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.document import Totals
from engine.errors import EditError
from engine.filtering import FilterResult
from engine.journal import Journal, describe_request
from engine.tree import TreeIndex

from .actions import EditActions
from .dialogs import base
from .file_actions import FileActions
from .formatting import format_bytes, format_count, format_short_count
from .graph import install_graph_dock
from .history_panel import HistoryPanel
from .icons import icon
from .inspector import Inspector
from .layout_actions import LayoutActions
from .lazy_panel import LazyPanel
from .listening import SessionListener
from .merging import MergeActions
from .settings import Settings
from .task_runner import TaskRunner
from .tree_model import TreeModel
from .tree_view import ModuleTreeView
from .workers import Task

if TYPE_CHECKING:
    from engine.session import Session

    from .plots.panel import PlotPanel
    from .training_panel import TrainingPanel

APP_NAME = "Weightsmith"
#: documents with more tensors than this have their totals counted in the background
SYNC_TOTALS_LIMIT = 20_000
#: documents with more tensors than this are kept out of the cyclic GC's full scans
GC_FREEZE_LIMIT = 20_000
#: the plot tabs, in the order of their Alt+number shortcuts
PLOT_TABS = (("histogram", "Histogram"), ("heatmap", "Heatmap"), ("filters", "Filters"),
             ("overview", "Layer Overview"))
#: the version of the saved dock layout; a layout saved with another is not restored
LAYOUT_VERSION = 2


def document_totals(session: Session, progress: Any = None) -> Totals:
    """The document's totals, each tensor once (reads no tensor data; safe in a worker
    thread, it only reads the document)."""
    return session.document.totals()


def _scroller(widget: QWidget, parent: QWidget) -> QScrollArea:
    """`widget` in a frameless scroll area that follows its width."""
    scroller = QScrollArea(parent)
    scroller.setWidgetResizable(True)
    scroller.setFrameShape(QScrollArea.Shape.NoFrame)
    scroller.setWidget(widget)
    return scroller


def undo_shortcuts() -> list[QKeySequence]:
    """The platform's Undo keys."""
    return QKeySequence.keyBindings(QKeySequence.StandardKey.Undo)


def redo_shortcuts() -> list[QKeySequence]:
    """The platform's Redo keys, plus Ctrl+Shift+Z and Ctrl+Y on every platform (Cmd on a
    Mac), since users bring both habits from other editors."""
    keys = list(QKeySequence.keyBindings(QKeySequence.StandardKey.Redo))
    for extra in (QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")):
        if extra not in keys:
            keys.append(extra)
    return keys


class MainWindow(QMainWindow):
    """Weightsmith's main window.

    Parameters
    ----------
    settings : where layout and recent files are kept (default: the user's settings)
    journal : the crash journal of this process (default: one in the config dir)

    Signals
    -------
    session_changed(object) : a new document (a Session, or None) is shown
    """

    session_changed = Signal(object)

    def __init__(self, settings: Settings | None = None, journal: Journal | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or Settings()
        self.journal = journal or Journal()
        self.session: Session | None = None
        self._listener = SessionListener(
            self, history_changed=self._on_history_changed, notice=self._on_notice,
            tensors_changed=self._on_document_changed, flags_changed=self._on_document_changed,
            structure_changed=self._on_document_changed)
        #: how the document was opened (an engine.journal open request), for the journal
        self.request: dict[str, Any] | None = None
        #: where Save writes without asking (None: Save asks for a place)
        self.document_path: str | None = None
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.resize(1280, 800)
        self.first_run = True

        self.tasks = TaskRunner(self)
        self.tree_model = TreeModel(parent=self)
        self.tree = ModuleTreeView(self)
        self.tree.set_tree_model(self.tree_model)
        self.tree.selection_changed.connect(self._on_selection_changed)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter: part of a name, a glob (*.bias) or "
                                            "type:Conv2d")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_text)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(250)
        self._filter_timer.timeout.connect(self.apply_filter)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.tree, 1)
        self.setCentralWidget(central)

        self.inspector = Inspector(self)
        self.inspector.error.connect(self.show_error)
        self.history_panel = HistoryPanel(self)
        self.history_panel.error.connect(self.show_error)
        # Built when first needed (a tensor selected, a plot or the training asked for):
        # the window is on screen before pyqtgraph and the training code are imported.
        self.plots_host = LazyPanel(self._make_plots, "Select a tensor to plot it.", self)
        self.training_host = LazyPanel(self._make_training, "Test training", self)

        # The inspector takes the whole right side; the plots sit under the tree only.
        # Its content scrolls rather than setting the window's minimum height, and its
        # height never pushes the plots about when the selection changes.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.inspector_scroller = _scroller(self.inspector, self)
        self.inspector_dock = self._dock("Inspector", "inspector", self.inspector_scroller,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock = self._dock("History", "history", self.history_panel,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.inspector_dock, self.history_dock)
        self.inspector_dock.raise_()
        self.plots_dock = self._dock("Plots", "plots", self.plots_host,
                                     Qt.DockWidgetArea.BottomDockWidgetArea)
        self.training_dock = self._dock("Test training", "training", self.training_host,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.training_dock.visibilityChanged.connect(
            lambda visible: self.training_host.ensure() if visible else None)
        self.tabifyDockWidget(self.plots_dock, self.training_dock)
        self.plots_dock.raise_()
        self._layout_pending = True  # the default dock sizes, once the window has its size

        # The toolbar shows the verb only (its buttons keep their width); the menus and
        # tooltips name the step. Application-wide, so a floating dock's keys work too.
        self.undo_action = QAction("Undo", self)
        self.undo_action.setIconText("Undo")
        self.undo_action.setShortcuts(undo_shortcuts())
        self.undo_action.triggered.connect(self.undo)
        self.redo_action = QAction("Redo", self)
        self.redo_action.setIconText("Redo")
        self.redo_action.setShortcuts(redo_shortcuts())
        self.redo_action.triggered.connect(self.redo)
        for action in (self.undo_action, self.redo_action):
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            action.setProperty("shortcut_name", action.iconText())  # for Help ▸ Shortcuts
        self.undo_action.setIcon(self.style().standardIcon(
            self.style().StandardPixmap.SP_ArrowBack))
        self.redo_action.setIcon(self.style().standardIcon(
            self.style().StandardPixmap.SP_ArrowForward))

        self.edit_actions = EditActions(self)
        self.file_actions = FileActions(self)
        self.merge_actions = MergeActions(self)
        self.layout_actions = LayoutActions(self)
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self.graph_dock = install_graph_dock(self)
        self.tree.customContextMenuRequested.connect(self._show_context_menu)

        self._totals_task: Task | None = None
        self._frozen_for_gc = False
        self._totals_timer = QTimer(self)
        self._totals_timer.setSingleShot(True)
        self._totals_timer.setInterval(100)
        self._totals_timer.timeout.connect(self.update_status)
        self._help_window: QWidget | None = None
        self._restore_layout()
        self.set_session(None)

    # ------------------------------------------------------------------ lazy panels
    @property
    def plots(self) -> PlotPanel:
        """The plots of the selected tensor (built on first use)."""
        return self.plots_host.ensure()  # type: ignore[return-value]

    @property
    def training(self) -> TrainingPanel:
        """The test-training panel (built on first use)."""
        return self.training_host.ensure()  # type: ignore[return-value]

    def _make_plots(self) -> QWidget:
        from .plots.panel import PlotPanel

        panel = PlotPanel(self)
        # A layer clicked in the overview becomes the selection.
        panel.tensor_requested.connect(lambda name: self.select_paths([name]))
        panel.set_session(self.session)
        return panel

    def _make_training(self) -> QWidget:
        from .training_panel import TrainingPanel

        panel = TrainingPanel(self.session, self)
        # While a test training runs the session refuses edits: grey the actions out.
        panel.busy_changed.connect(self._on_busy_changed)
        return panel

    # ------------------------------------------------------------------ layout
    def _dock(self, title: str, name: str, widget: QWidget,
              area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.file_actions.fill_menu(file_menu)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        self.edit_actions.fill_menu(edit_menu)
        self.layout_actions.fill_menu(self.edit_actions.tensor_menu)
        self.merge_actions.fill_edit_menu(edit_menu)
        self.adapters_menu = bar.addMenu("&Adapters")
        self.merge_actions.fill_adapters_menu(self.adapters_menu)
        view_menu = bar.addMenu("&View")
        for dock in (self.inspector_dock, self.history_dock, self.plots_dock,
                     self.training_dock):
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        find = view_menu.addAction("Filter the Tree")
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(lambda: (self.filter_edit.setFocus(),
                                        self.filter_edit.selectAll()))
        self.expand_all_action = view_menu.addAction("Expand All")
        self.expand_all_action.setToolTip("Expand every row of the tree (a very big model is "
                                          "expanded up to a limit)")
        self.expand_all_action.triggered.connect(lambda: self.expand_all(""))
        self.collapse_all_action = view_menu.addAction("Collapse All")
        self.collapse_all_action.triggered.connect(self.tree.collapse_all)
        view_menu.addSeparator()
        plots_menu = view_menu.addMenu("Plot")
        for number, (kind, text) in enumerate(PLOT_TABS, start=1):
            action = plots_menu.addAction(text)
            action.setShortcut(QKeySequence(f"Alt+{number}"))
            action.triggered.connect(lambda checked=False, kind=kind: self.show_plot(kind))
            if kind == "overview":
                action.setToolTip("One bar per layer, to spot a badly initialized layer")
        training = view_menu.addAction("Test Training")
        training.setShortcut(QKeySequence(f"Alt+{len(PLOT_TABS) + 1}"))
        training.triggered.connect(self.show_training)
        help_menu = bar.addMenu("&Help")
        documentation = help_menu.addAction("Documentation")
        documentation.setShortcut(QKeySequence.StandardKey.HelpContents)
        documentation.triggered.connect(lambda: self.show_help("gui.md"))
        recipes = help_menu.addAction("Recipe Format")
        recipes.triggered.connect(lambda: self.show_help("recipes.md"))
        shortcuts = help_menu.addAction("Keyboard Shortcuts")
        shortcuts.setShortcut(QKeySequence("Ctrl+/"))
        shortcuts.triggered.connect(self.show_shortcuts)
        help_menu.addSeparator()
        about = help_menu.addAction("About Weightsmith")
        about.triggered.connect(lambda: base.show_info(
            self, "About Weightsmith",
            "Weightsmith: edit PyTorch models and checkpoints with exact undo, "
            "replayable recipes and safe file handling."))

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("toolbar_main")
        toolbar.setIconSize(QSize(20, 20))
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.file_actions.fill_toolbar(toolbar)
        toolbar.addSeparator()
        toolbar.addAction(self.undo_action)
        toolbar.addAction(self.redo_action)
        toolbar.addSeparator()
        self.edit_actions.fill_toolbar(toolbar)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.params_label = QLabel(self)
        self.memory_label = QLabel(self)
        self.mode_label = QLabel(self)
        self.device_label = QLabel(self)
        status.addPermanentWidget(self.tasks)
        for label in (self.params_label, self.memory_label, self.mode_label, self.device_label):
            status.addPermanentWidget(label)

    def _restore_layout(self) -> None:
        """The saved geometry and docks; on a first run, the screen's available area."""
        geometry, state = self.settings.window_state()
        self.first_run = geometry is None
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            screen = self.screen() or QGuiApplication.primaryScreen()
            if screen is not None:
                area = screen.availableGeometry()
                self.setGeometry(area)
        # A layout saved by an older version (other docks, other corners) is not restored.
        if state is not None and self.restoreState(state, LAYOUT_VERSION):
            self._layout_pending = False

    def save_layout(self) -> None:
        """Store the window's geometry and dock layout in the settings."""
        self.settings.set_window_state(self.saveGeometry(), self.saveState(LAYOUT_VERSION))
        self.settings.sync()

    def apply_default_layout(self) -> None:
        """Size the docks for the window's size: the inspector about a third of the width,
        the plots half of the height (their plots at least 40% of the window's)."""
        width = min(max(int(self.width() * 0.34), 360), 620)
        self.resizeDocks([self.inspector_dock], [width], Qt.Orientation.Horizontal)
        self.resizeDocks([self.plots_dock], [int(self.height() * 0.5)],
                         Qt.Orientation.Vertical)
        self._layout_pending = False

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._layout_pending:
            # After the window has its size on screen, and its layout has run once.
            QTimer.singleShot(0, self.apply_default_layout)

    # ------------------------------------------------------------------ the document
    def set_session(self, session: Session | None, request: dict[str, Any] | None = None,
                    path: str | None = None, tree: TreeIndex | None = None) -> None:
        """Show `session`, opened as `request` (for the journal) from `path` (for Save).

        `tree` may be an index of the session warmed in the worker that opened it.
        """
        if self._frozen_for_gc:
            gc.unfreeze()  # the old document may now be collected like anything else
            self._frozen_for_gc = False
        self.session = session
        self.request = request
        self.document_path = path
        self.filter_edit.blockSignals(True)
        self.filter_edit.clear()
        self.filter_edit.blockSignals(False)
        self.tree_model.set_session(session, tree)
        self.inspector.set_session(session)
        self.history_panel.set_session(session)
        if self.plots_host.built:
            self.plots.set_session(session)
        if self.training_host.built:
            self.training.set_session(session)
        self._listener.follow(session)
        if session is not None:
            self.tree.expand_path("")
            self.journal.opened(request)
        else:
            self.journal.opened(None)
        self._on_history_changed()
        self.update_status()
        self.edit_actions.update_enabled()
        self.file_actions.update_enabled()
        self.merge_actions.update_enabled()
        if session is not None and len(session.document.tensor_names()) > GC_FREEZE_LIMIT:
            # A big document lives until it is replaced: keep its (many) objects out of
            # the cyclic collector's full scans, which hold the GIL and freeze the GUI.
            gc.freeze()
            self._frozen_for_gc = True
        if session is not None:
            from .preload import preload

            preload()  # the plots' and the training's imports, in the background
        self.session_changed.emit(session)

    def document_name(self) -> str:
        """The name shown in the title: the file, or what was opened."""
        if self.document_path:
            return Path(self.document_path).name
        if self.request is not None:
            return describe_request(self.request)
        return "Untitled" if self.session is not None else ""

    def _update_title(self) -> None:
        name = self.document_name()
        self.setWindowTitle(f"{name}[*] — {APP_NAME}" if name else APP_NAME)
        self.setWindowModified(bool(self.session is not None and self.session.is_modified))

    # ------------------------------------------------------------------ undo / redo
    def undo(self) -> None:
        """Undo the last step (the Undo action)."""
        if self.session is not None and self.session.history.can_undo:
            try:
                self.session.undo()
            except EditError as error:
                self.show_error(str(error))

    def redo(self) -> None:
        """Redo the last undone step (the Redo action)."""
        if self.session is not None and self.session.history.can_redo:
            try:
                self.session.redo()
            except EditError as error:
                self.show_error(str(error))

    def _on_history_changed(self) -> None:
        session = self.session
        undo_label = session.history.undo_label if session is not None else None
        redo_label = session.history.redo_label if session is not None else None
        for action, verb, label in ((self.undo_action, "Undo", undo_label),
                                    (self.redo_action, "Redo", redo_label)):
            text = f"{verb} {label}" if label else verb
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            action.setText(text)
            action.setToolTip(f"{text} ({keys})" if keys else text)
        self.undo_action.setEnabled(bool(session is not None and session.can_undo))
        self.redo_action.setEnabled(bool(session is not None and session.can_redo))
        self._update_title()
        if session is not None:
            self.journal.write(session)

    def _on_busy_changed(self, _busy: bool) -> None:
        self._on_history_changed()
        self.edit_actions.update_enabled()
        self.merge_actions.update_enabled()

    def _on_notice(self, text: str) -> None:
        self.statusBar().showMessage(text, 10000)

    # ------------------------------------------------------------------ status
    def _on_document_changed(self, *args: object) -> None:
        self._totals_timer.start()
        self.edit_actions.update_enabled()

    def update_status(self) -> None:
        """Show totals, memory by dtype, mode and device in the status bar.

        A document of more than `SYNC_TOTALS_LIMIT` tensors is counted in the
        background (the labels keep their last figures until then).
        """
        session = self.session
        if session is None:
            for label in (self.params_label, self.memory_label, self.mode_label,
                          self.device_label):
                label.setText("")
            return
        self.mode_label.setText(f"Mode: {session.mode}")
        if len(session.document.tensor_names()) <= SYNC_TOTALS_LIMIT:
            self._show_totals(session, document_totals(session))
            return
        if self._totals_task is not None:
            self._totals_task.cancel()
        task = self._totals_task = Task(document_totals, session, name="totals")
        task.succeeded.connect(lambda totals, task=task: self._on_totals(task, session, totals))
        task.start()

    def _on_totals(self, task: Task, session: Session, totals: Totals) -> None:
        if task is self._totals_task and session is self.session:
            self._totals_task = None
            self._show_totals(session, totals)

    def _show_totals(self, session: Session, totals: Totals) -> None:
        if session.document.has_modules:
            self.params_label.setText(
                f"Parameters: {format_short_count(totals.parameters)} "
                f"(trainable {format_short_count(totals.trainable)})")
            self.params_label.setToolTip(f"{format_count(totals.parameters)} parameters, "
                                         f"{format_count(totals.trainable)} trainable")
        else:
            self.params_label.setText(f"Elements: {format_short_count(totals.parameters)}")
            self.params_label.setToolTip(f"{format_count(totals.parameters)} elements")
        memory = sorted(totals.bytes_by_dtype.items(), key=lambda item: -item[1])
        self.memory_label.setText(" · ".join(f"{dtype} {format_bytes(nbytes)}"
                                             for dtype, nbytes in memory[:3]))
        self.memory_label.setToolTip("\n".join(f"{dtype}: {format_bytes(nbytes)}"
                                               for dtype, nbytes in memory))
        self.mode_label.setText(f"Mode: {session.mode}")
        self.mode_label.setToolTip("model: a live module is edited; checkpoint: bare tensors "
                                   "(attach an architecture for module edits)")
        # Tensors not read yet are read onto the CPU.
        devices = totals.devices | ({"cpu"} if totals.unread else set())
        self.device_label.setText("Device: " + (", ".join(sorted(devices)) or "–"))

    # ------------------------------------------------------------------ selection
    def selected_paths(self) -> list[str]:
        """Dotted paths of the selected tree rows."""
        return self.tree.selected_paths()

    def current_path(self) -> str | None:
        """Dotted path of the current tree row."""
        return self.tree.current_path()

    def select_paths(self, paths: list[str], current: str | None = None) -> None:
        """Select rows by dotted name (their ancestors are expanded)."""
        self.tree.select_paths(paths, current)

    def _on_selection_changed(self, paths: list[str], current: str | None) -> None:
        self.inspector.show_path(current)
        name = current if current is not None and self._is_tensor(current) else None
        if name is not None or self.plots_host.built:
            self.plots.show_tensor(name)
        self.edit_actions.update_enabled()

    def _is_tensor(self, path: str) -> bool:
        info = self.tree_model.info_of(self.tree_model.index_of(path))
        return info is not None and info.is_tensor

    def _show_overview(self) -> None:
        self.show_plot("overview")

    def show_plot(self, kind: str) -> None:
        """Bring the plots forward on `kind`: histogram, heatmap, filters or overview."""
        self.plots_dock.show()
        self.plots_dock.raise_()
        if kind == "overview":
            self.plots.show_overview()
            return
        view = {"histogram": self.plots.histogram_view, "heatmap": self.plots.heatmap_view,
                "filters": self.plots.filter_view}[kind]
        if self.plots.tabs.isTabVisible(self.plots.tabs.indexOf(view)):
            self.plots.tabs.setCurrentWidget(view)
        else:
            self.statusBar().showMessage(f"No {kind} for this selection", 4000)

    def show_training(self) -> None:
        """Bring the test-training panel forward."""
        self.training_dock.show()
        self.training_dock.raise_()

    def _show_context_menu(self, position: Any) -> None:
        menu = QMenu(self)
        self.fill_tree_menu(menu)
        self.edit_actions.fill_context_menu(menu)
        menu.exec(self.tree.viewport().mapToGlobal(position))
        menu.deleteLater()

    def fill_tree_menu(self, menu: QMenu) -> None:
        """The tree's own entries of its context menu: copy, expand, collapse."""
        paths = self.selected_paths()
        copy_path = menu.addAction("Copy Path")
        copy_path.setShortcut(QKeySequence.StandardKey.Copy)
        copy_path.setEnabled(any(paths))
        copy_path.triggered.connect(self.tree.copy_paths)
        copy_shape = menu.addAction("Copy Shape")
        copy_shape.setEnabled(bool(paths) and all(self._is_tensor(path) for path in paths))
        copy_shape.triggered.connect(self.tree.copy_shapes)
        menu.addSeparator()
        below = [path for path in paths if self.tree_model.hasChildren(
            self.tree_model.index_of(path))]
        expand = menu.addAction("Expand All")
        expand.setEnabled(bool(below))
        expand.triggered.connect(lambda: [self.expand_all(path) for path in below])
        collapse = menu.addAction("Collapse All")
        collapse.setEnabled(bool(below))
        collapse.triggered.connect(lambda: [self.tree.collapse_below(path) for path in below])
        menu.addSeparator()

    def expand_all(self, path: str) -> None:
        """Expand every row below `path` ('' : the whole tree), up to `EXPAND_LIMIT` rows."""
        from .tree_view import EXPAND_LIMIT

        if not self.tree.expand_below(path):
            self.statusBar().showMessage(f"Expanded the first {EXPAND_LIMIT:,} rows only "
                                         "(expand further levels one at a time)", 8000)

    # ------------------------------------------------------------------ help
    def show_help(self, document: str = "gui.md") -> None:
        """Open the documentation window at docs/`document`."""
        from .help_window import HelpWindow

        if self._help_window is None:
            self._help_window = HelpWindow(self)
            size = self._help_window.size().boundedTo(self.size())
            self._help_window.resize(size)
            self._help_window.move(self.geometry().center() - self._help_window.rect().center())
        self._help_window.show_document(document)
        self._help_window.show()
        self._help_window.raise_()

    def show_shortcuts(self) -> None:
        """List every keyboard shortcut."""
        from .help_window import ShortcutsDialog

        base.run_dialog(ShortcutsDialog(self.menuBar(), self))

    # ------------------------------------------------------------------ filter
    def _on_filter_text(self, text: str) -> None:
        self._filter_timer.start()

    def apply_filter(self) -> None:
        """Filter the tree by the filter box's text now (it also follows typing)."""
        self._filter_timer.stop()
        text = self.filter_edit.text().strip()
        if self.session is None or not text:
            self.tree_model.set_filter(None)
            if self.session is not None:
                self.tree.reapply_state()
            return
        result = FilterResult.build(self.session, text)
        self.tree_model.set_filter(result)
        self.tree.reapply_state()
        for path in result.expand_paths():
            self.tree.expand_path(path)
        self.statusBar().showMessage(f"{len(result.matched):,} match(es) for '{text}'", 5000)

    # ------------------------------------------------------------------ errors
    def show_error(self, message: str) -> None:
        """Show one clear line about what went wrong; the app keeps going."""
        base.show_error(self, message)

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [url for url in event.mimeData().urls() if url.isLocalFile()]
        if not urls:
            event.ignore()
            return
        event.acceptProposedAction()
        self.file_actions.open_path(urls[0].toLocalFile())

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.file_actions.confirm_discard(self.close):
            event.ignore()
            return
        self.tasks.stop()
        if self._totals_task is not None:
            self._totals_task.cancel()
            self._totals_task.wait(5.0)
            self._totals_task = None
        self.inspector.close_session()
        if self.plots_host.built:
            self.plots.set_session(None)
        if self.training_host.built:
            self.training.set_session(None)
        self.save_layout()
        session_was = self.session
        self.set_session(None)
        if session_was is not None:
            self.journal.clear()  # a clean exit: nothing to restore next time
        event.accept()
