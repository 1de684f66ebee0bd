"""The main window while a test training runs: edit actions and undo are greyed out,
and come back after Keep or Discard."""

from __future__ import annotations

from engine import Session
from tests.models import MLP, seeded


def test_edit_actions_are_disabled_during_a_run(qtbot, make_window):
    session = Session(seeded(MLP))
    window = make_window(session)
    session.apply({"op": "freeze", "targets": ["fc1"]})
    window.select_paths(["fc2"])
    actions = window.edit_actions
    assert actions.freeze_action.isEnabled()
    assert window.undo_action.isEnabled()
    panel = window.training
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("synthetic"))
    panel.steps_box.setValue(1_000_000)
    panel.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(panel.busy_changed, timeout=10_000):
        panel.start_button.click()
    assert not actions.freeze_action.isEnabled()
    assert not actions.init_action.isEnabled()
    assert not window.undo_action.isEnabled()
    qtbot.waitUntil(lambda: panel.curve_points()["loss"] > 0, timeout=60_000)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.stop_button.click()
    with qtbot.waitSignal(panel.busy_changed, timeout=10_000):
        panel.discard_button.click()
    assert actions.freeze_action.isEnabled()
    assert window.undo_action.isEnabled()
