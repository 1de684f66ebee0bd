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


def test_the_dialog_shows_the_cost_of_ties_and_writes_the_choice(make_window, qtbot, tmp_path,
                                                                 dialogs):
    import torchvision
    from safetensors.torch import load_model

    torch.manual_seed(0)
    session = Session(torchvision.models.resnet18())
    session.apply({"op": "tie", "target": "layer1.0.conv2.weight",
                   "source": "layer1.0.conv1.weight"})
    window = make_window(session)
    seen = {}

    def choose_once(dialog):
        dialog.path_field.set_text(str(tmp_path / "r.safetensors"))
        seen["labels"] = [dialog.ties.itemText(i) for i in range(dialog.ties.count())]
        seen["default"] = dialog.ties.currentData()
        seen["note"] = dialog.ties_note.text()
        dialog.ties.setCurrentIndex(dialog.ties.findData("once"))

    dialogs.answer(choose_once)
    window.file_actions.save_as_action.trigger()
    target = tmp_path / "r.safetensors"
    wait_saved(qtbot, window, target)
    assert seen["default"] == "every_name"
    assert seen["labels"][0] == "Under every name (+144.0 KiB)"  # 64*64*3*3 float32
    assert "load_state_dict" in seen["note"]
    model = torchvision.models.resnet18()
    model.layer1[0].conv2.weight = model.layer1[0].conv1.weight
    load_model(model, str(target))  # stored once, as chosen
    assert "layer1.0.conv2.weight" not in load_file(str(target))


def test_saving_a_broadcast_view_dense_asks_first(make_window, tmp_path, dialogs, monkeypatch):
    from gui.dialogs import base

    session = Session(checkpoint={"w": torch.zeros(1).expand(2**16, 2**16)})  # 16 GiB dense
    window = make_window(session)
    target = tmp_path / "v.safetensors"
    asked = []

    def refuse(*args, **kwargs):
        asked.append(args[2])
        return False

    monkeypatch.setattr(base, "ask", refuse)
    window.file_actions.save_to(str(target), {})
    assert len(asked) == 1
    assert "would write 17.2 GB from 4 B" in asked[0]
    assert not window.tasks.busy
    assert not target.exists()
