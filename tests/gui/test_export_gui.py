"""File ▸ Export for Deployment: the dialog, the background export, the result, a failure
that offers the other formats, Cancel."""

from __future__ import annotations

import torch

from engine import Session
from engine.io.atomic import TEMP_MARK
from engine.opening import open_demo
from tests.models import Gated, seeded
from tests.snapshots import assert_same, snapshot


def fill(path, fmt=None, dynamic=False, shape=""):
    def answer(dialog):
        if fmt is not None:
            dialog.set_field("format", fmt)
        dialog.set_field("path", str(path))
        dialog.set_field("input_shape", shape)
        dialog.dynamic.setChecked(dynamic)
    return answer


def wait_done(qtbot, window, timeout=120000):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=timeout)


def test_export_the_demo_and_show_the_verification(make_window, qtbot, dialogs, tmp_path):
    window = make_window(open_demo())
    action = window.file_actions.export_deploy_action
    assert action in window.menuBar().actions()[0].menu().actions()
    assert action.isEnabled()
    before = snapshot(window.session.model)
    path = tmp_path / "digits.pt2"
    dialogs.answer(fill(path, "pt2", dynamic=True))
    action.trigger()
    assert dialogs.shown == ["ExportDialog"]
    assert window.tasks.busy  # the export runs in the background
    wait_done(qtbot, window)
    assert dialogs.errors == []
    [message] = dialogs.infos
    assert message.startswith("Wrote digits.pt2: verified with torch.export.load, max rel diff ")
    assert "at batch 1, 3; exported in eval mode" in message
    report = window.file_actions.deploy_export.report
    assert [difference.batch for difference in report.differences] == [1, 3]
    assert report.max_rel <= report.tolerance
    program = torch.export.load(path)
    assert program.module()(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert_same(before, snapshot(window.session.model))
    assert not window.session.is_modified
    assert window.session.busy_reason is None


def test_the_format_and_the_ending_follow_each_other(make_window, dialogs, tmp_path):
    from gui.dialogs.export_dialog import ExportDialog

    window = make_window(open_demo())
    dialog = ExportDialog(str(tmp_path / "digits.safetensors"), "pt2", parent=window)
    assert dialog.path() == str(tmp_path / "digits.pt2")
    dialog.set_field("format", "torchscript")
    assert dialog.path() == str(tmp_path / "digits.pt")
    assert not dialog.opset_field.widget.isEnabled()
    dialog.set_field("path", str(tmp_path / "digits.onnx"))
    assert dialog.format() == "onnx"
    assert dialog.opset_field.widget.isEnabled()
    dialog.set_field("input_shape", "1, 8, 8")
    dialog.set_field("opset", "18")
    assert dialog.options() == {"batch_size": 1, "dynamic_batch": False,
                                "input_shape": [1, 8, 8], "opset": 18}
    dialog.set_field("opset", "9")
    dialog.accept()
    assert dialog.problem_text() == "ONNX opset: must be at least 18"
    assert dialog.result() != dialog.DialogCode.Accepted
    dialog.deleteLater()


def test_a_model_that_cannot_be_exported_offers_the_other_formats(make_window, qtbot,
                                                                  dialogs, tmp_path):
    window = make_window(Session(seeded(Gated)))
    before = snapshot(window.session.model)
    failures = []

    def retry(dialog):
        failures.append(dialog.failure_label.text())
        assert dialog.format() == "onnx"  # another format than the one that failed
        dialog.set_field("format", "torchscript")

    dialogs.answer(fill(tmp_path / "gated.pt2", "pt2"))
    dialogs.answer(retry)
    window.file_actions.export_deploy_action.trigger()
    qtbot.waitUntil(lambda: bool(failures), timeout=120000)
    assert failures[0].startswith("pt2: cannot export module 'gate' (Gate.forward at models.py:")
    assert "data-dependent control flow" in failures[0]
    assert failures[0].splitlines()[1] == "The other formats may work: choose one below."
    wait_done(qtbot, window)
    assert not (tmp_path / "gated.pt2").exists()
    assert (tmp_path / "gated.pt").is_file()
    assert dialogs.infos[0].startswith("Wrote gated.pt: verified with torch.jit.load")
    assert_same(before, snapshot(window.session.model))


def test_cancel_writes_nothing_and_keeps_the_model(make_window, qtbot, dialogs, tmp_path):
    window = make_window(open_demo())
    before = snapshot(window.session.model)
    dialogs.answer(fill(tmp_path / "digits.pt2", "pt2"))
    window.file_actions.export_deploy_action.trigger()
    window.tasks.cancel()
    wait_done(qtbot, window)
    assert window.statusBar().currentMessage() == "Export cancelled; nothing was written"
    assert [child.name for child in tmp_path.iterdir() if TEMP_MARK in child.name
            or child.suffix == ".pt2"] == []
    assert dialogs.infos == []
    assert_same(before, snapshot(window.session.model))
    assert window.session.busy_reason is None


def test_the_action_needs_a_model(make_window):
    window = make_window(Session(checkpoint={"w": torch.zeros(2)}))
    assert not window.file_actions.export_deploy_action.isEnabled()
