"""The training panel: a short run on the demo, Keep / Discard / Stop, errors, lifetimes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engine import EditError, Session
from engine.opening import open_demo
from gui.dialogs import base
from gui.training_panel import MAX_POINTS, Curve, TrainingPanel
from tests.models import MLP, seeded
from tests.snapshots import assert_same, snapshot

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def errors(monkeypatch):
    """Error dialogs recorded instead of shown (a test never waits for a human)."""
    shown: list[str] = []
    monkeypatch.setattr(base, "show_error", lambda _parent, message: shown.append(message))
    return shown


def finetune_session() -> Session:
    session = open_demo()
    session.apply({"op": "freeze", "targets": ["features"], "bn_eval": True})
    session.apply({"op": "replace_head", "num_classes": 10, "seed": 1})
    return session


def make_panel(qtbot, session: Session | None, steps: int = 20) -> TrainingPanel:
    panel = TrainingPanel(session)
    qtbot.addWidget(panel)
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("demo"))
    panel.steps_box.setValue(steps)
    panel.seed_box.setValue(0)
    panel.lr_box.setValue(0.01)
    panel.device_combo.setCurrentText("cpu")
    return panel


def run_to_end(qtbot, panel: TrainingPanel):
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.start_button.click()
    return blocker.args[0]


def test_a_short_demo_run_shows_curves_and_report_and_keep_is_one_step(qtbot, errors):
    session = finetune_session()
    before = snapshot(session.model)
    panel = make_panel(qtbot, session)
    panel.multipliers_edit.setText("classifier.4=10")
    steps_before = len(session.history.steps)
    busy = []
    panel.busy_changed.connect(busy.append)

    report = run_to_end(qtbot, panel)
    assert report.steps == 20
    assert report.loss_end < report.loss_start
    assert [g["lr_multiplier"] for g in report.param_groups] == [1.0, 10.0]
    assert panel.curve_points()["loss"] == 20
    assert panel.curve_points()["accuracy"] == 20
    assert "PASS  frozen tensors bit-identical" in panel.report_view.toPlainText()
    assert panel.verdict_label.text() == "All checks passed"
    assert panel.keep_button.isEnabled()
    assert panel.discard_button.isEnabled()
    assert not panel.start_button.isEnabled()
    assert busy == [True]
    with pytest.raises(EditError, match="keep or discard"):
        session.apply({"op": "unfreeze", "targets": ["features"]})

    with qtbot.waitSignal(panel.decided, timeout=1000) as decided:
        panel.keep_button.click()
    assert decided.args == ["kept"]
    assert busy == [True, False]
    assert len(session.history.steps) == steps_before + 1
    assert session.history.undo_label == "Test training: 20 steps"
    assert panel.start_button.isEnabled()
    assert not panel.keep_button.isEnabled()
    session.undo()
    assert_same(before, snapshot(session.model))
    assert errors == []


def test_discard_restores_the_model_bit_for_bit(qtbot, errors):
    session = open_demo()  # BatchNorm statistics move too
    before = snapshot(session.model)
    panel = make_panel(qtbot, session, steps=5)
    report = run_to_end(qtbot, panel)
    assert report.batchnorm_changed == ["features.1", "features.4"]
    with qtbot.waitSignal(panel.decided, timeout=1000) as decided:
        panel.discard_button.click()
    assert decided.args == ["discarded"]
    assert_same(before, snapshot(session.model))
    assert session.busy_reason is None
    assert not session.history.steps
    assert errors == []


def test_stop_ends_a_long_run_cleanly(qtbot, errors):
    session = finetune_session()
    before = snapshot(session.model)
    panel = make_panel(qtbot, session, steps=1_000_000)
    panel.start_button.click()
    assert panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: panel.curve_points()["loss"] > 0, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.stop_button.click()
    report = blocker.args[0]
    assert report.stopped
    assert 0 < report.steps < 1_000_000
    assert "(stopped)" in panel.report_view.toPlainText()
    assert not panel.stop_button.isEnabled()
    panel.discard_button.click()
    assert_same(before, snapshot(session.model))
    assert errors == []


def test_the_run_happens_off_the_gui_thread_and_edits_are_refused_meanwhile(qtbot, errors):
    session = Session(seeded(MLP))
    panel = make_panel(qtbot, session, steps=50)
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("synthetic"))
    threads = []
    refused = []
    push = panel._buffer.push

    def spy(metrics):
        threads.append(threading.current_thread())
        try:
            session.apply({"op": "freeze", "targets": ["fc1"]})
        except EditError:
            refused.append(True)
        push(metrics)

    panel._buffer.push = spy
    run_to_end(qtbot, panel)
    assert threads
    assert all(thread is not threading.main_thread() for thread in threads)
    assert refused
    assert len(refused) == len(threads)
    panel.discard_button.click()
    assert errors == []


def test_bad_settings_are_one_line_and_change_nothing(qtbot, errors, tmp_path):
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    panel = make_panel(qtbot, session)
    failures = []
    panel.run_failed.connect(failures.append)

    panel.data_combo.setCurrentIndex(panel.data_combo.findData("file"))
    panel.start_button.click()
    assert errors[-1] == "data: choose a tensor file (Browse…)"

    panel.data_combo.setCurrentIndex(panel.data_combo.findData("synthetic"))
    panel.multipliers_edit.setText("fc1")
    panel.start_button.click()
    assert "expected NAME=NUMBER" in errors[-1]

    panel.multipliers_edit.clear()
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("folder"))
    panel.path_edit.setText(str(tmp_path / "missing"))
    with qtbot.waitSignal(panel.run_failed, timeout=RUN_TIMEOUT_MS):
        panel.start_button.click()
    assert "missing: no such file or folder" in errors[-1]
    assert "\n" not in errors[-1]
    assert len(failures) == 3
    assert session.busy_reason is None
    assert panel.start_button.isEnabled()
    assert_same(before, snapshot(session.model))


def test_browse_fills_the_path(qtbot, errors, monkeypatch, tmp_path):
    panel = make_panel(qtbot, Session(seeded(MLP)))
    asked = []

    def choose(_parent, title, _folder, _filters, directory=False):
        asked.append((title, directory))
        return str(tmp_path)

    monkeypatch.setattr(base, "choose_open_path", choose)
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("folder"))
    assert panel.browse_button.isEnabled()
    panel.browse_button.click()
    assert asked == [("Image folder to train on", True)]
    assert panel.path_edit.text() == str(tmp_path)
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("demo"))
    assert not panel.browse_button.isEnabled()


def test_switching_documents_mid_run_stops_and_restores_the_old_one(qtbot, errors):
    session = finetune_session()
    before = snapshot(session.model)
    panel = make_panel(qtbot, session, steps=1_000_000)
    busy = []
    panel.busy_changed.connect(busy.append)
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.curve_points()["loss"] > 0, timeout=RUN_TIMEOUT_MS)
    panel.set_session(None)
    assert panel.task is None
    assert busy == [True, False]
    assert session.busy_reason is None
    assert_same(before, snapshot(session.model))
    assert not panel.start_button.isEnabled()
    assert panel.status_label.text() == "Open a model to test-train it."
    qtbot.wait(50)  # a late signal of the abandoned run must change nothing
    assert_same(before, snapshot(session.model))


def test_closing_with_an_undecided_result_discards_it(qtbot, errors):
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    panel = make_panel(qtbot, session, steps=3)
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("synthetic"))
    run_to_end(qtbot, panel)
    panel.close()
    assert session.busy_reason is None
    assert_same(before, snapshot(session.model))


def test_checkpoint_mode_and_no_document_cannot_start(qtbot, errors):
    panel = make_panel(qtbot, None)
    assert not panel.start_button.isEnabled()
    panel.set_session(Session(checkpoint={"w": torch.zeros(2)}))
    assert not panel.start_button.isEnabled()
    assert "Checkpoint mode" in panel.status_label.text()
    panel.set_session(Session(seeded(MLP)))
    assert panel.start_button.isEnabled()


def test_live_curves_stay_bounded():
    curve = Curve()
    for start in range(0, 3 * MAX_POINTS, 1000):
        curve.extend([(step + 1, float(step)) for step in range(start, start + 1000)])
    steps, values = curve.data()
    assert MAX_POINTS // 2 <= len(steps) <= MAX_POINTS
    assert steps[0] < 20  # neighbours were averaged: the curve keeps its start and end
    assert steps[-1] > 3 * MAX_POINTS - 20
    assert (np.diff(steps) > 0).all()
    assert values == pytest.approx(steps - 1)  # averaging pairs keeps each point on the line
