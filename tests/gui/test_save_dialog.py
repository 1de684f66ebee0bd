"""The Save As dialog: the format follows the name, a fresh name is suggested, overwriting
is asked first."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from engine import Session
from tests.models import SmallCNN, seeded


def wait_saved(qtbot, window, target):
    qtbot.waitUntil(lambda: not window.tasks.busy and target.exists()
                    and not window.session.is_modified, timeout=20000)


def opened_pth(make_window, tmp_path):
    path = tmp_path / "model.pth"
    torch.save(seeded(SmallCNN).state_dict(), path)
    session = Session.open(path)
    window = make_window(session, {"kind": "file", "path": str(path)}, str(path))
    session.apply({"op": "scale", "targets": ["classifier.2.bias"], "value": 2.0})
    return window, path


def test_save_as_writes_the_format_the_typed_name_says(make_window, qtbot, tmp_path, dialogs):
    window, _ = opened_pth(make_window, tmp_path)
    target = tmp_path / "x.safetensors"
    seen = {}

    def fill(dialog):
        seen["format_before"] = dialog.format_field.text()
        dialog.path_field.set_text(str(target))
        seen["format_after"] = dialog.format_field.text()

    dialogs.answer(fill)
    window.file_actions.save_as_action.trigger()
    wait_saved(qtbot, window, target)
    assert seen == {"format_before": "pt", "format_after": "safetensors"}
    saved = load_file(str(target))  # a safetensors file, not a torch zip under that name
    expected = seeded(SmallCNN).state_dict()["classifier.2.bias"] * 2
    assert torch.equal(saved["classifier.2.bias"], expected)


def test_choosing_a_format_renames_the_file(make_window, tmp_path, dialogs):
    window, _ = opened_pth(make_window, tmp_path)
    seen = {}

    def fill(dialog):
        dialog.path_field.set_text(str(tmp_path / "y.safetensors"))
        dialog.format_field.set_text("pt")
        seen["pt"] = dialog.path()
        dialog.format_field.set_text("folder")
        seen["folder"] = dialog.path()
        return False

    dialogs.answer(fill)
    window.file_actions.save_as_action.trigger()
    assert seen == {"pt": str(tmp_path / "y.pt"), "folder": str(tmp_path / "y")}


def test_save_as_suggests_an_edited_name_and_asks_before_replacing(make_window, qtbot,
                                                                  tmp_path, dialogs):
    window, source = opened_pth(make_window, tmp_path)
    original = source.read_bytes()
    seen = {}

    def keep_suggestion(dialog):
        seen["first"] = dialog.path()

    dialogs.answer(keep_suggestion)
    window.file_actions.save_as_action.trigger()
    first = tmp_path / "model_edited.pth"
    wait_saved(qtbot, window, first)
    assert seen["first"] == str(first)
    assert source.read_bytes() == original  # the opened file was never offered

    window.session.apply({"op": "scale", "targets": ["classifier.2.bias"], "value": 2.0})
    attempts = []

    def type_existing(dialog):
        attempts.append(dialog.path())
        dialog.path_field.set_text(str(source))
        dialog.accept()  # the first answer below: do not replace; the dialog stays open
        attempts.append(dialog.isVisible() or dialog.result())

    dialogs.questions.extend([False, True])
    dialogs.answer(type_existing)
    window.file_actions.save_as_action.trigger()
    qtbot.waitUntil(lambda: not window.tasks.busy and source.read_bytes() != original,
                    timeout=20000)
    assert attempts[0] == str(tmp_path / "model_edited2.pth")  # model_edited.pth exists now
    assert attempts[1] == 0  # not accepted by the first "Cancel"
    assert dialogs.questions == []  # both questions were asked
    assert torch.equal(torch.load(source, weights_only=True)["classifier.2.bias"],
                       seeded(SmallCNN).state_dict()["classifier.2.bias"] * 4)
