"""The window at 1280x800: plots readable, docks that move and come back, run controls in view,
a layout that does not jump, a module inspector with its settings and its place."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from torch import nn

from engine import Session
from tests.models import SmallCNN, seeded

WIDTH, HEIGHT = 1280, 800


def laid_out(window, qtbot, width: int = WIDTH, height: int = HEIGHT):
    window.resize(width, height)
    window.apply_default_layout()
    qtbot.wait(30)
    return window


@pytest.fixture
def cnn_window(make_window, qtbot):
    return laid_out(make_window(Session(seeded(SmallCNN))), qtbot)


def test_the_plots_get_room_at_1280x800(cnn_window, qtbot):
    window = cnn_window
    assert window.plots_dock.height() >= 0.4 * HEIGHT
    window.select_paths(["features.3.weight"])
    qtbot.wait(30)
    plot = window.plots.histogram_view.plot
    assert plot.height() >= 0.3 * HEIGHT
    # The inspector has the whole right side; the plots sit under the tree.
    inspector = window.inspector_dock.geometry()
    plots = window.plots_dock.geometry()
    assert inspector.left() >= plots.right()
    assert inspector.top() < plots.top()
    assert inspector.bottom() >= plots.bottom() - 30  # only the dock tabs below the plots


def test_selecting_a_tensor_does_not_move_the_plots(cnn_window, qtbot):
    window = cnn_window
    tabs = window.plots.tabs

    def where() -> tuple[QPoint, int]:
        return tabs.mapTo(window, QPoint(0, 0)), tabs.height()

    window.select_paths(["features"])
    qtbot.wait(20)
    first = where()
    for path in ("features.3.weight", "classifier.2", "features.0.bias", "features.1"):
        window.select_paths([path])
        qtbot.wait(20)
        assert where() == first, path


def test_the_dock_separator_moves_freely(cnn_window, qtbot):
    window = cnn_window
    heights = []
    for share in (0.3, 0.65):
        window.resizeDocks([window.plots_dock], [int(HEIGHT * share)], Qt.Orientation.Vertical)
        qtbot.wait(20)
        heights.append(window.plots_dock.height())
    # Every pixel asked for is given (the dock tabs below take their own 26 or so).
    assert abs(heights[1] - heights[0] - 0.35 * HEIGHT) <= 2
    assert heights[0] >= 0.3 * HEIGHT - 32
    window.resizeDocks([window.inspector_dock], [300], Qt.Orientation.Horizontal)
    qtbot.wait(20)
    assert abs(window.inspector_dock.width() - 300) < 12


def test_dock_sizes_come_back_from_the_settings(make_window, qtbot):
    # Within the offscreen screen (800x800): Qt fits a restored window into the screen.
    window = laid_out(make_window(Session(seeded(SmallCNN))), qtbot, 780, 760)
    window.resizeDocks([window.plots_dock], [260], Qt.Orientation.Vertical)
    window.resizeDocks([window.inspector_dock], [330], Qt.Orientation.Horizontal)
    qtbot.wait(20)
    sizes = (window.plots_dock.height(), window.inspector_dock.width())
    window.save_layout()
    from engine.journal import Journal
    from gui.main_window import MainWindow

    again = MainWindow(window.settings, Journal(window.journal.directory))
    again.show()
    qtbot.waitExposed(again)
    qtbot.wait(30)
    try:
        assert not again.first_run
        assert (again.width(), again.height()) == (window.width(), window.height())
        assert abs(again.plots_dock.height() - sizes[0]) <= 2
        assert abs(again.inspector_dock.width() - sizes[1]) <= 2
    finally:
        again.close()
        again.deleteLater()


def test_a_first_run_fills_the_screen(tmp_path, qtbot):
    from engine.journal import Journal
    from gui.main_window import MainWindow
    from gui.settings import Settings

    window = MainWindow(Settings(tmp_path / "fresh.ini"), Journal(tmp_path / "journal"))
    try:
        assert window.first_run
        assert window.geometry() == QGuiApplication.primaryScreen().availableGeometry()
    finally:
        window.deleteLater()


# ---------------------------------------------------------------------- test training
def test_run_controls_stay_in_view_at_1280x800(cnn_window, qtbot):
    window = cnn_window
    window.show_training()
    panel = window.training
    qtbot.wait(30)
    for height in (int(HEIGHT * 0.5), 220):  # the default, and a dock pushed small
        window.resizeDocks([window.training_dock], [height], Qt.Orientation.Vertical)
        qtbot.wait(30)
        dock = window.training_dock
        for button in (panel.start_button, panel.stop_button, panel.keep_button,
                       panel.discard_button):
            assert button.isVisible()
            top_left = button.mapTo(dock, QPoint(0, 0))
            assert dock.rect().contains(top_left), (height, button.text())
            assert dock.rect().contains(top_left + QPoint(button.width() - 1,
                                                          button.height() - 1))
            assert not panel.settings_scroller.isAncestorOf(button)  # never scrolled away
        assert panel.lr_box.height() >= panel.lr_box.sizeHint().height()  # not squashed


def test_the_settings_do_not_scroll_while_a_run_starts(make_window, qtbot):
    window = laid_out(make_window(Session(seeded(SmallCNN))), qtbot)
    window.show_training()
    window.resizeDocks([window.training_dock], [220], Qt.Orientation.Vertical)
    panel = window.training
    panel.data_combo.setCurrentIndex(0)  # synthetic data: no files
    panel.steps_box.setValue(100_000)
    qtbot.wait(30)
    bar = panel.settings_scroller.verticalScrollBar()
    assert bar.maximum() > 0  # the settings do scroll at this height
    panel.precision_combo.setFocus()
    bar.setValue(bar.maximum())
    qtbot.wait(10)
    panel.start_button.click()
    try:
        qtbot.wait(100)
        assert bar.value() == bar.maximum()
        assert panel.stop_button.hasFocus()
    finally:
        panel.stop()
        qtbot.waitUntil(lambda: not panel.running, timeout=30000)
        panel.discard()


def test_the_hint_follows_the_document(qtbot):
    from gui.training_panel import TrainingPanel

    panel = TrainingPanel(None)
    qtbot.addWidget(panel)
    assert panel.status_label.text() == "Open a model to test-train it."
    panel.set_session(Session(seeded(SmallCNN)))
    assert panel.status_label.text() == "Ready: choose the settings and press Start."
    panel.set_session(Session(checkpoint={"w": torch.ones(2)}))
    assert panel.status_label.text().startswith("Checkpoint mode")
    panel.set_session(None)
    assert panel.status_label.text() == "Open a model to test-train it."


def test_the_learning_rate_box_steps_through_decades(qtbot):
    from gui.number_boxes import LogSpinBox, step_value

    assert [step_value(1e-3, n) for n in (1, 2, 3, -1, -2)] == [2e-3, 5e-3, 1e-2, 5e-4, 2e-4]
    assert step_value(3e-4, 1) == 5e-4
    assert step_value(3e-4, -1) == 2e-4
    box = LogSpinBox(1e-3, 1e-8, 10.0)
    qtbot.addWidget(box)
    assert box.text() == "0.001"
    box.stepBy(1)
    assert box.value() == pytest.approx(2e-3)
    box.lineEdit().setText("3e-05")
    box.interpretText()
    assert box.value() == pytest.approx(3e-5)
    assert box.text() == "3e-05"
    box.stepBy(100)
    assert box.value() == 10.0  # clamped to the range


# ---------------------------------------------------------------------- shortcuts to plots
def test_alt_numbers_bring_each_plot_forward(cnn_window, qtbot):
    window = cnn_window
    window.select_paths(["features.3.weight"])
    plots = window.plots
    actions = {action.text(): action for action in window.findChildren(type(window.undo_action))
               if action.shortcut().toString().startswith("Alt+")}
    assert actions["Heatmap"].shortcut().toString() == "Alt+2"
    actions["Heatmap"].trigger()
    assert plots.tabs.currentWidget() is plots.heatmap_view
    actions["Filters"].trigger()
    assert plots.tabs.currentWidget() is plots.filter_view
    actions["Test Training"].trigger()
    assert not window.training_dock.visibleRegion().isEmpty()
    actions["Histogram"].trigger()
    assert plots.tabs.currentWidget() is plots.histogram_view
    assert not window.plots_dock.visibleRegion().isEmpty()
    window.select_paths(["features.3.bias"])  # 1-D: no heatmap
    actions["Heatmap"].trigger()
    assert plots.tabs.currentWidget() is plots.histogram_view


# ---------------------------------------------------------------------- module inspector
def test_the_module_inspector_shows_settings_and_place(cnn_window):
    window = cnn_window
    inspector = window.inspector
    window.select_paths(["features.3"])
    settings = {key: label.text() for key, label in inspector.settings.items()}
    assert settings == {"in_channels": "4", "out_channels": "6", "kernel_size": "(3, 3)",
                        "stride": "(1, 1)", "padding": "(1, 1)"}
    assert not inspector.settings_box.isHidden()
    assert inspector.facts["Parent"].text() == "features (Sequential)"
    assert inspector.facts["Children"].text() == "0"
    assert inspector.facts["Same type"].text() == "2 in features: 0, 3"
    window.select_paths(["features.1"])
    assert inspector.settings["eps"].text() == "1e-05"
    assert inspector.settings["momentum"].text() == "0.1"
    assert inspector.settings["num_features"].text() == "4"
    window.select_paths(["features.2"])  # ReLU: nothing to show
    assert inspector.settings_box.isHidden()
    window.select_paths([""])
    assert "Parent" not in inspector.facts
    assert inspector.facts["Children"].text() == "2"
    window.select_paths(["features.3.weight"])  # a tensor: no hyperparameters box
    assert inspector.settings_box.isHidden()


def test_repeated_layers_are_counted(make_window):
    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.layers = nn.ModuleList(nn.TransformerEncoderLayer(4, 2, 8) for _ in range(12))

    window = make_window(Session(Encoder()))
    window.select_paths(["layers.5"])
    facts = window.inspector.facts
    assert facts["Same type"].text() == \
        "12 in layers: 0, 1, 2, 3, 4, 5, 6, …, 11"
    assert facts["Parent"].text() == "layers (ModuleList)"
    assert int(facts["Children"].text()) >= 4
