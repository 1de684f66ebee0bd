"""The Graph dock: the model's dataflow graph over `engine.graph` (see gui/graph/panel.py)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget

from .panel import GraphPanel

__all__ = ["GraphPanel", "install_graph_dock"]


def install_graph_dock(window: Any) -> QDockWidget:
    """Add the Graph dock to the main window, tabbed with the plots, and link it.

    The dock follows the window's document (`session_changed`); a node selected in the
    graph selects its module or tensor in the tree (and so the inspector), a row
    selected in the tree is revealed in the graph. View ▸ Graph (Alt+G) shows it.
    """
    panel = GraphPanel(window, window)
    dock = QDockWidget("Graph", window)
    dock.setObjectName("dock_graph")
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    plots = getattr(window, "plots_dock", None)
    if plots is not None:
        window.tabifyDockWidget(plots, dock)
        plots.raise_()
    window.session_changed.connect(panel.set_session)
    window.tree.selection_changed.connect(
        lambda paths, current: panel.reveal(current) if dock.isVisible() else None)
    panel.paths_selected.connect(lambda paths: window.select_paths(paths, paths[-1]))
    toggle = dock.toggleViewAction()
    toggle.setText("Graph")
    toggle.setShortcut(QKeySequence("Alt+G"))
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == "View" and action.menu() is not None:
            action.menu().addAction(toggle)
    window.graph_panel = panel
    return dock
