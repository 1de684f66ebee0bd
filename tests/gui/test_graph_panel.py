"""The Graph dock: linking with the tree both ways, edits and undo from the graph, overlays,
search, keyboard, export."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ElementTree

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from engine import Session
from gui.graph.items import BoxItem
from gui.graph.overlay_colors import CHANGED, TIED, TRAINABLE
from tests.models import SmallCNN, TiedLM, seeded

pytestmark = pytest.mark.qt_log_level_fail("WARNING")


def open_graph(make_window, qtbot, model):
    """A window on `model` with the Graph dock shown and its exported graph drawn."""
    window = make_window(Session(model))
    window.graph_dock.show()
    window.graph_dock.raise_()
    panel = window.graph_host.ensure()
    assert panel is window.graph_panel
    qtbot.waitUntil(lambda: panel.graph is not None and panel.graph.method == "export"
                    and panel._task is None, timeout=120_000)
    return window, panel


def click(panel, key):
    """Select a box as a mouse click does (the scene's selection changes)."""
    panel.scene.clearSelection()
    panel.item_of(key).setSelected(True)


def test_selecting_in_the_graph_selects_the_tree_and_back(make_window, qtbot):
    window, panel = open_graph(make_window, qtbot, seeded(SmallCNN))
    # Two top-level children: the larger opens at first.
    assert panel.expanded == {"", "features"}
    assert {"features.0", "classifier", "input:x"} <= set(panel.boxes)
    panel.set_expanded({""})
    assert {"features", "classifier", "input:x"} <= set(panel.boxes)
    # Graph -> tree: a closed group selects its module, and the inspector shows it.
    click(panel, "features")
    assert window.selected_paths() == ["features"]
    assert window.current_path() == "features"
    # Tree -> graph: a tensor deep inside opens its groups and is selected.
    window.select_paths(["classifier.2.weight"], "classifier.2.weight")
    assert {"classifier", "classifier.2"} <= panel.expanded
    item = panel.item_of("classifier.2.weight")
    assert isinstance(item, BoxItem)
    assert item.isSelected()
    assert any(edge.highlighted for edge in panel.edges)
    # Graph -> tree again, from the tensor box: the tree row of the tensor.
    panel.set_expanded(panel.expanded | {"features", "features.0"})
    click(panel, "features.0.weight")
    assert window.selected_paths() == ["features.0.weight"]
    # An op selects the module it ran in.
    click(panel, "features.0#0")
    assert window.selected_paths() == ["features.0"]


def test_an_edit_and_its_undo_from_the_graph(make_window, qtbot):
    window, panel = open_graph(make_window, qtbot, seeded(SmallCNN))
    session = window.session
    panel.set_expanded({""})
    panel.overlay.setCurrentIndex(panel.overlay.findData("trainable"))
    click(panel, "features")
    menu = panel.context_menu("features")
    texts = [action.text() for action in menu.actions()]
    assert "Open Group" in texts
    assert "Freeze" in texts
    freeze = next(action for action in menu.actions() if action.text() == "Freeze")
    freeze.trigger()
    assert not session.model.features[0].weight.requires_grad
    assert session.history.labels[-1].startswith("Freeze")
    assert panel.item_of("features").overlay.name() == TRAINABLE["frozen"]
    assert panel.item_of("classifier").overlay.name() == TRAINABLE["trainable"]
    window.undo_action.trigger()
    assert session.model.features[0].weight.requires_grad
    assert panel.item_of("features").overlay.name() == TRAINABLE["trainable"]
    menu.deleteLater()


def test_a_structural_edit_rebuilds_only_its_group_and_keeps_the_selection(make_window, qtbot):
    window, panel = open_graph(make_window, qtbot, seeded(SmallCNN))
    session = window.session
    panel.set_expanded({"", "features", "classifier"})
    click(panel, "features.3")
    kept = {key: panel.item_of(key) for key in ("features.0", "features.3", "input:x")}
    old_engine = panel.layout_engine
    session.apply({"op": "replace", "target": "classifier.2",
                   "module": {"type": "Linear", "out_features": 3}})
    qtbot.waitUntil(lambda: panel.graph.nodes["classifier.2#0"].shape == (1, 3)
                    and panel._task is None, timeout=120_000)
    assert panel.item_of("features.3").isSelected()
    for key, item in kept.items():
        assert panel.item_of(key) is item, f"{key} was rebuilt"
    # Only the changed group and its ancestors were laid out again.
    assert panel.layout_engine is not old_engine
    assert panel.layout_engine.computed <= 2  # the root; classifier came from the quick pass
    session.undo()
    qtbot.waitUntil(lambda: panel.graph.nodes["classifier.2#0"].shape == (1, 5)
                    and panel._task is None, timeout=120_000)
    assert panel.item_of("features.3").isSelected()
    assert panel.item_of("features.0") is kept["features.0"]


def test_tied_and_changed_overlays(make_window, qtbot):
    window, panel = open_graph(make_window, qtbot, seeded(TiedLM))
    session = window.session
    panel.overlay.setCurrentIndex(panel.overlay.findData("tied"))
    assert panel.item_of("embed").overlay.name() == TIED
    assert panel.item_of("lm_head").overlay.name() == TIED
    assert panel.item_of("block").overlay is None
    # The tied weight is one tensor read twice.
    panel.set_expanded(set(panel.tree.groups))
    readers = {edge.target for edge in panel.edges if edge.source == "embed.weight"}
    assert readers == {"embed#0", "lm_head#0"}
    panel.set_expanded({""})
    panel.overlay.setCurrentIndex(panel.overlay.findData("changed"))
    assert all(item.overlay is None for item in panel.boxes.values())
    session.apply({"op": "init", "targets": ["block.0"], "method": "zeros"})
    assert panel.item_of("block").overlay.name() == CHANGED
    assert panel.item_of("embed").overlay is None
    session.undo()
    assert panel.item_of("block").overlay is None
    panel.overlay.setCurrentIndex(panel.overlay.findData("parameters"))
    assert panel.item_of("embed").overlay is not None
    panel.overlay.setCurrentIndex(panel.overlay.findData("norm"))
    qtbot.waitUntil(lambda: panel.item_of("block").overlay is not None, timeout=30_000)


def test_search_keyboard_and_groups(make_window, qtbot):
    window, panel = open_graph(make_window, qtbot, seeded(SmallCNN))
    panel.set_expanded({""})
    panel.search.setText("batchnorm")
    assert panel.find("batchnorm") == ["features.1", "features.4"]
    panel.search.returnPressed.emit()
    assert panel.item_of("features.1").isSelected()
    assert "features" in panel.expanded
    assert window.selected_paths() == ["features.1"]
    panel.view.key_navigation.emit("down")
    assert panel._selected == "features.2"
    assert window.selected_paths() == ["features.2"]
    panel.view.key_navigation.emit("up")
    assert panel._selected == "features.1"
    panel.view.key_navigation.emit("toggle")
    assert "features.1" in panel.expanded
    assert "features.1#0" in panel.boxes
    panel.view.key_navigation.emit("toggle")
    assert "features.1" not in panel.expanded


def test_export_svg_and_png(make_window, qtbot, tmp_path, dialogs):
    _window, panel = open_graph(make_window, qtbot, seeded(SmallCNN))
    svg = tmp_path / "graph.svg"
    png = tmp_path / "graph.png"
    dialogs.paths = [str(svg), str(tmp_path / "graph")]
    panel.export_dialog("svg")
    panel.export_dialog("png")
    root = ElementTree.fromstring(svg.read_text())
    assert root.tag.endswith("svg")
    texts = " ".join(element.text or "" for element in root.iter())
    assert "features" in texts
    assert "classifier" in texts
    image = QImage(str(png))
    assert not image.isNull()
    assert image.width() > 100
    assert image.height() > 100
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix) == ["graph.png", "graph.svg"]


def test_checkpoint_mode_and_untraceable_models_say_why(make_window, qtbot):
    window = make_window(Session(checkpoint={"w": torch.zeros(2)}))
    window.graph_dock.show()
    window.graph_dock.raise_()
    panel = window.graph_host.ensure()
    assert "checkpoint mode" in panel.status.text()
    assert not panel.boxes

    class Broken(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x):
            raise ValueError("not today")

    window.set_session(Session(Broken()))
    qtbot.waitUntil(lambda: "cannot be traced" in panel.status.text()
                    or "no example inputs" in panel.status.text(), timeout=120_000)
    assert "\n" not in panel.status.text()


def test_building_runs_off_the_gui_thread_with_progress_and_cancel(make_window, qtbot,
                                                                    monkeypatch):
    import gui.graph.panel as panel_module
    from engine.progress import report

    real_build = panel_module.build_graph
    threads = []

    def slow_build(model, *, progress=None, **kwargs):
        threads.append(threading.current_thread())
        for _ in range(6000):  # about a minute, unless cancelled
            report(progress, 0.5, "tracing (slowly)")
            time.sleep(0.01)
        raise AssertionError("the build was not cancelled")

    monkeypatch.setattr(panel_module, "build_graph", slow_build)
    window = make_window(Session(seeded(SmallCNN)))
    window.graph_dock.show()
    window.graph_dock.raise_()
    panel = window.graph_host.ensure()
    tasks = panel.tasks
    # The progress reaches the bar while the GUI thread keeps turning its event loop.
    qtbot.waitUntil(lambda: tasks.isVisible() and tasks.bar.value() == 500, timeout=30_000)
    assert threads
    assert threads[0] is not threading.main_thread()
    assert tasks.cancel_button.isEnabled()
    qtbot.mouseClick(tasks.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.status.text() == "Graph building cancelled", timeout=30_000)
    assert panel._task is None
    assert panel.graph is None
    assert not panel.boxes
    assert not tasks.isVisible()
    threads[0].join(10)
    assert not threads[0].is_alive()
    # Building again afterwards draws the graph.
    monkeypatch.setattr(panel_module, "build_graph", real_build)
    panel.rebuild()
    qtbot.waitUntil(lambda: panel.graph is not None and panel._task is None, timeout=120_000)
    assert {"features.0", "classifier", "input:x"} <= set(panel.boxes)
