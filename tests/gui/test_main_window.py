"""The main window: laziness, history, undo texts, status bar, filter, state by name."""

from __future__ import annotations

import sys

import torch
from torch import nn

from engine import Session
from gui.tree_model import BATCH
from tests.gui.helpers import assert_tree_agrees
from tests.models import SmallCNN, TiedLM, seeded


def ten_thousand_modules() -> nn.Module:
    """100 blocks of 99 layers each: 10,001 modules in all."""
    return nn.Sequential(*[nn.Sequential(*[nn.Linear(1, 1) for _ in range(99)])
                           for _ in range(100)])


def visible_rows(window) -> int:
    tree = window.tree
    return max(tree.viewport().height() // max(tree.sizeHintForRow(0), 1), 1)


def test_ten_thousand_modules_stay_lazy(make_window, qtbot):
    model = ten_thousand_modules()
    assert sum(1 for _ in model.modules()) == 10_001
    window = make_window(Session(model))
    qtbot.wait(50)
    rows = visible_rows(window)
    built = window.tree_model.materialized_count()
    computed = window.tree_model.tree.cached_paths()
    # Rows are built a batch at a time as the view needs them, facts only for rows drawn.
    assert built <= rows + 2 * BATCH
    assert computed <= built
    assert built < 200  # of 20,001 modules and tensors
    window.tree.expand_path("57")
    window.tree.expand_path("57.98")
    qtbot.wait(50)
    assert window.tree_model.materialized_count() <= built + 99 + 2 + 2 * BATCH
    # Scrolling fetches the next rows of a wide level when they come into view.
    window.tree.expand_path("3")
    model = window.tree_model
    block = model.index_for_path("3")
    shown = model.rowCount(block)
    assert shown < 99
    from PySide6.QtWidgets import QAbstractItemView

    window.tree.scrollTo(model.index(shown - 1, 0, block),
                         QAbstractItemView.ScrollHint.PositionAtCenter)
    qtbot.wait(20)
    assert model.rowCount(block) > shown


def test_undo_redo_texts_title_and_history_panel(make_window):
    window = make_window(Session(seeded(SmallCNN)), {"kind": "demo"})
    session = window.session
    assert window.undo_action.text() == "Undo"
    assert not window.undo_action.isEnabled()
    assert not window.isWindowModified()
    session.apply({"op": "freeze", "targets": ["features"]})
    session.apply({"op": "set", "target": "classifier.2.bias", "value": 0.0})
    assert window.undo_action.text() == "Undo Set classifier.2.bias"
    assert window.isWindowModified()
    assert window.windowTitle().startswith("the demo model[*]")
    panel = window.history_panel
    assert [panel.item(row).text() for row in range(panel.count())] == [
        "Opened", "Freeze features", "Set classifier.2.bias"]
    assert panel.currentRow() == 2
    panel.change_position(0)  # a click on "Opened"
    assert session.history.position == 0
    assert session.document.tensor("features.0.weight").requires_grad
    assert window.redo_action.text() == "Redo Freeze features"
    assert not window.isWindowModified()
    panel.change_position(2)
    assert session.history.position == 2
    assert_tree_agrees(window)


def test_standard_undo_shortcuts(make_window):
    from PySide6.QtGui import QKeySequence

    window = make_window(Session(seeded(SmallCNN)))
    assert window.undo_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)
    assert window.redo_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Redo)


def test_status_bar_totals(make_window, qtbot):
    window = make_window(Session(seeded(TiedLM)))
    session = window.session
    total = sum(p.numel() for p in session.model.parameters())
    assert window.params_label.toolTip() == f"{total:,} parameters, {total:,} trainable"
    assert window.mode_label.text() == "Mode: model"
    assert window.device_label.text() == "Device: cpu"
    assert "float32" in window.memory_label.text()
    session.apply({"op": "freeze", "targets": ["embed"]})
    trainable = total - session.model.embed.weight.numel()
    qtbot.waitUntil(lambda: window.params_label.toolTip()
                    == f"{total:,} parameters, {trainable:,} trainable", timeout=2000)


def test_checkpoint_status_and_inspector(make_window):
    session = Session(checkpoint={"a.w": torch.ones(4, 2),
                                  "a.b": torch.zeros(3, dtype=torch.int64)})
    window = make_window(session)
    assert window.mode_label.text() == "Mode: checkpoint"
    assert window.params_label.text() == "Elements: 11"
    window.select_paths(["a"])
    assert window.inspector.facts["Parameters"].text() == "11"
    window.select_paths(["a.w"])
    assert window.inspector.stats["Mean"].text() == "1"
    assert window.inspector.stats["Zeros"].text() == "0.00 %"


def test_inspector_module_and_tensor(make_window):
    window = make_window(Session(seeded(SmallCNN)))
    session = window.session
    session.apply({"op": "freeze", "targets": ["features.0"]})
    window.select_paths(["features"])
    facts = window.inspector.facts
    frozen = session.model.features[0].weight.numel() + session.model.features[0].bias.numel()
    assert facts["Frozen"].text() == f"{frozen:,}"
    assert "float32" in [window.inspector.dtype_form.itemAt(row, window.inspector.dtype_form
                         .ItemRole.LabelRole).widget().text().rstrip(":")
                         for row in range(window.inspector.dtype_form.rowCount())]
    window.select_paths(["features.0.weight"])
    weight = session.document.tensor("features.0.weight")
    assert window.inspector.facts["Trainable"].text() == "no (frozen)"
    assert float(window.inspector.stats["Max"].text()) == float(f"{weight.max().item():.6g}")
    # The inspector follows edits of the tensor it shows.
    session.apply({"op": "set", "target": "features.0.weight", "value": 2.0})
    window.inspector.refresh()
    assert window.inspector.stats["Mean"].text() == "2"


def test_large_tensor_statistics_run_in_the_background(make_window, qtbot, monkeypatch):
    import gui.inspector as inspector_module

    monkeypatch.setattr(inspector_module, "SYNC_STATS_LIMIT", 10)
    window = make_window(Session(seeded(SmallCNN)))
    window.select_paths(["features.3.weight"])
    assert window.inspector.stats["Mean"].text() == "…"
    qtbot.waitUntil(lambda: window.inspector.stats["Mean"].text() != "…", timeout=10000)
    mean = window.session.document.tensor("features.3.weight").double().mean().item()
    assert abs(float(window.inspector.stats["Mean"].text()) - mean) < 1e-5
    assert window.inspector.values.model.rowCount() == 3  # values come after the stats


def test_filter_by_name_glob_and_type(make_window, qtbot):
    window = make_window(Session(seeded(SmallCNN)))
    window.filter_edit.setText("type:BatchNorm2d")
    window.apply_filter()
    shown = set(window.tree_model.materialized_paths())
    assert {"features.1", "features.4"} <= shown
    assert "classifier" not in shown
    assert window.tree.isExpanded(window.tree_model.index_of("features"))
    window.filter_edit.setText("*.bias")
    window.apply_filter()
    assert "features.0.bias" in window.tree_model.materialized_paths()
    window.filter_edit.clear()
    window.apply_filter()
    assert "classifier" in window.tree_model.materialized_paths()


def test_selection_and_expansion_survive_structure_edits_and_undo(make_window):
    window = make_window(Session(seeded(SmallCNN)))
    session = window.session
    window.tree.expand_path("classifier.2")
    window.select_paths(["classifier.2.weight"])
    session.apply({"op": "replace", "target": "classifier.2",
                   "module": {"type": "Linear", "out_features": 3}})
    assert window.tree.isExpanded(window.tree_model.index_for_path("classifier.2"))
    assert window.selected_paths() == ["classifier.2.weight"]
    assert window.inspector.path == "classifier.2.weight"
    session.undo()
    assert window.tree.isExpanded(window.tree_model.index_for_path("classifier.2"))
    assert window.selected_paths() == ["classifier.2.weight"]
    assert_tree_agrees(window)


def test_switching_documents_disconnects_views(make_window):
    first = Session(seeded(SmallCNN))
    window = make_window(first)
    assert len(first.events.history_changed) >= 2
    window.set_session(Session(seeded(TiedLM)))
    for event in (first.events.history_changed, first.events.tensors_changed,
                  first.events.structure_changed, first.events.flags_changed,
                  first.events.notice):
        assert len(event) == 0, event.name


def test_layout_is_saved_and_restored(make_window, tmp_path):
    window = make_window(Session(seeded(SmallCNN)))
    window.history_dock.hide()
    window.resize(900, 650)
    window.save_layout()
    again = make_window()
    assert again.history_dock.isHidden()


def test_pyside_refcount_fix_keeps_long_sessions_alive(qapp):
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    from gui import pyside_fix

    class Emitter(QObject):
        fired = Signal(int)

    emitter = Emitter()
    label = QLabel()
    none_before = sys.getrefcount(None)
    for step in range(30_000):  # without the fix this aborts the interpreter on 3.11
        emitter.fired.emit(step)
        label.setText("x")
    assert sys.getrefcount(None) > 0
    if pyside_fix.has_refcount_bug():
        assert pyside_fix.install()
        assert sys.getrefcount(None) > 2**50
    else:
        assert sys.getrefcount(None) >= none_before - 10
    label.deleteLater()


def test_big_documents_are_counted_in_the_background(make_window, qtbot, monkeypatch):
    import gui.inspector as inspector_module
    import gui.main_window as main_window_module

    monkeypatch.setattr(main_window_module, "SYNC_TOTALS_LIMIT", 3)
    monkeypatch.setattr(inspector_module, "SYNC_SUMMARY_LIMIT", 3)
    session = Session(checkpoint={f"layer{i}.w": torch.ones(2, 2) for i in range(10)})
    window = make_window(session)
    qtbot.waitUntil(lambda: window.params_label.text() == "Elements: 40", timeout=5000)
    window.select_paths(["layer3"])
    assert window.inspector.subtitle.text() == "Counting…"
    qtbot.waitUntil(lambda: "Parameters" in window.inspector.facts, timeout=5000)
    assert window.inspector.facts["Parameters"].text() == "4"
    session.apply({"op": "delete", "targets": ["layer0.w"]})
    qtbot.waitUntil(lambda: window.params_label.text() == "Elements: 36", timeout=5000)


def test_the_open_task_hands_over_a_warmed_tree(make_window, qtbot, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "many.safetensors"
    save_file({f"block.{i}.weight": torch.zeros(2) for i in range(300)}, str(path))
    window = make_window()
    window.file_actions.open_path(str(path))
    qtbot.waitUntil(lambda: window.session is not None and not window.tasks.busy, timeout=20000)
    tree = window.tree_model.tree
    assert "block" in tree._current._info  # its facts were computed in the worker
    assert window.tree_model.info_of(window.tree_model.index_for_path("block")).parameters \
        == 600
