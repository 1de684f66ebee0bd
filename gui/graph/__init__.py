"""The Graph dock: the model's dataflow graph over `engine.graph` (see gui/graph/panel.py).

The panel imports torch (through the engine's graph package), so the dock holds a
`LazyPanel` until it is first shown: the window paints before torch is imported.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget, QWidget

from ..lazy_panel import LazyPanel

__all__ = ["install_graph_dock"]


def install_graph_dock(window: Any) -> QDockWidget:
    """Add the Graph dock to the main window, tabbed with the plots, and link it.

    The panel is built when the dock is first shown and then follows the window's
    document (`session_changed`); a node selected in the graph selects its module or
    tensor in the tree (and so the inspector), a row selected in the tree is revealed
    in the graph. View ▸ Graph (Alt+G) shows it. `window.graph_host.ensure()` gives
    the panel (built on demand); `window.graph_panel` is it once built.
    """
    window.graph_panel = None

    def make() -> QWidget:
        from .panel import GraphPanel

        panel = GraphPanel(window, window)
        panel.paths_selected.connect(lambda paths: window.select_paths(paths, paths[-1]))
        window.graph_panel = panel
        panel.set_session(window.session)
        return panel

    host = LazyPanel(make, "The model's graph, traced when this tab is shown.", window)
    dock = QDockWidget("Graph", window)
    dock.setObjectName("dock_graph")
    dock.setWidget(host)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    plots = getattr(window, "plots_dock", None)
    if plots is not None:
        window.tabifyDockWidget(plots, dock)
        plots.raise_()
    dock.visibilityChanged.connect(lambda visible: host.ensure() if visible else None)

    def on_session(session: Any) -> None:
        if window.graph_panel is not None:
            window.graph_panel.set_session(session)

    def on_tree_selection(paths: list[str], current: str | None) -> None:
        if window.graph_panel is not None and dock.isVisible():
            window.graph_panel.reveal(current)

    window.session_changed.connect(on_session)
    window.tree.selection_changed.connect(on_tree_selection)
    toggle = dock.toggleViewAction()
    toggle.setText("Graph")
    toggle.setShortcut(QKeySequence("Alt+G"))
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == "View" and action.menu() is not None:
            action.menu().addAction(toggle)
    window.graph_host = host
    return dock
