"""File work through the GUI: open (trust, nested, bad files, drag and drop, recent),
save, quit prompts, exports, compare, pretrained weights, and the crash journal."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from safetensors.torch import load_file, save_file

from engine import Session
from engine.journal import Journal
from tests.gui.helpers import assert_tree_agrees
from tests.models import SmallCNN, seeded


class CustomConfig:
    """A non-tensor object: a checkpoint holding it needs trust to open."""

    def __init__(self) -> None:
        self.lr = 0.1


def state(seed: int = 0) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in seeded(SmallCNN, seed).state_dict().items()}


def wait_opened(qtbot, window, path=None):
    qtbot.waitUntil(lambda: window.session is not None and not window.tasks.busy
                    and (path is None or window.document_path == str(path)), timeout=20000)


def test_open_a_safetensors_file(make_window, qtbot, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(state(), str(path))
    window = make_window()
    window.file_actions.open_path(str(path))
    assert window.tasks.busy  # the reading runs in the background
    wait_opened(qtbot, window, path)
    assert window.session.mode == "checkpoint"
    assert window.windowTitle() == "model.safetensors[*] — Weightsmith"
    assert window.settings.recent_files()[0] == str(path.resolve())
    assert "features.0.weight" in window.tree_model.materialized_paths() or \
        window.tree_model.index_for_path("features.0.weight").isValid()
    assert_tree_agrees(window)


def test_a_bad_file_is_one_line_and_keeps_the_document(make_window, qtbot, tmp_path, dialogs):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"this is not a checkpoint at all")
    session = Session(seeded(SmallCNN))
    window = make_window(session)
    window.file_actions.open_path(str(path))
    qtbot.waitUntil(lambda: not window.tasks.busy and bool(dialogs.errors), timeout=20000)
    assert len(dialogs.errors) == 1
    assert "broken.pt" in dialogs.errors[0]
    assert "\n" not in dialogs.errors[0]
    assert "weights_only=False" not in dialogs.errors[0]
    assert window.session is session


def test_a_file_that_runs_code_asks_for_trust(make_window, qtbot, tmp_path, dialogs):
    path = tmp_path / "custom.pt"
    torch.save({"state_dict": state(), "config": CustomConfig()}, path)
    window = make_window()
    seen = []

    def decline(dialog):
        seen.append(dialog.globals)
        return False

    dialogs.answer(decline)
    window.file_actions.open_path(str(path))
    qtbot.waitUntil(lambda: not window.tasks.busy and bool(seen), timeout=20000)
    assert any("CustomConfig" in name for name in seen[0])
    assert window.session is None  # not trusted: not opened
    dialogs.answer(lambda dialog: None)  # trust it this time
    window.file_actions.open_path(str(path))
    wait_opened(qtbot, window, path)
    assert "features.0.weight" in window.session.document.tensor_names()


def test_a_nested_checkpoint_offers_its_state_dicts(make_window, qtbot, tmp_path, dialogs):
    path = tmp_path / "nested.pt"
    ema = state(seed=3)
    torch.save({"state_dict": state(), "ema": ema, "epoch": 3}, path)
    window = make_window()
    offered = []

    def pick(dialog):
        offered.extend(dialog.candidates)
        dialog.choose("ema")

    dialogs.answer(pick)
    window.file_actions.open_path(str(path))
    wait_opened(qtbot, window, path)
    assert offered == ["state_dict", "ema"]
    shown = window.session.document.tensor("features.0.weight")
    assert torch.equal(shown, ema["features.0.weight"])


def test_drag_and_drop_opens_a_file(make_window, qtbot, tmp_path):
    path = tmp_path / "dropped.safetensors"
    save_file(state(), str(path))
    window = make_window()
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    wait_opened(qtbot, window, path)


def test_open_recent_removes_a_missing_file(make_window, dialogs, tmp_path):
    window = make_window()
    missing = tmp_path / "gone.safetensors"
    window.settings.add_recent_file(str(missing))
    window.file_actions._fill_recent_menu()
    action = window.file_actions.recent_menu.actions()[0]
    assert action.text() == str(missing.resolve())
    action.trigger()
    assert "no longer exists" in dialogs.errors[0]
    assert window.settings.recent_files() == []


def test_save_as_then_save(make_window, qtbot, tmp_path, dialogs):
    window = make_window(Session(seeded(SmallCNN)), {"kind": "demo"})
    session = window.session
    session.apply({"op": "set", "target": "classifier.2.bias", "value": 0.5})
    target = tmp_path / "edited.safetensors"
    dialogs.answer(lambda dialog: dialog.path_field.set_text(str(target)))
    window.file_actions.save_action.trigger()  # no file yet: Save asks where
    qtbot.waitUntil(lambda: not window.tasks.busy and target.exists(), timeout=20000)
    assert not session.is_modified
    assert not window.isWindowModified()
    assert window.document_path == str(target)
    saved = load_file(str(target))
    assert torch.all(saved["classifier.2.bias"] == 0.5)
    session.apply({"op": "set", "target": "classifier.2.bias", "value": 0.25})
    window.file_actions.save_action.trigger()  # now it saves in place, no dialog
    qtbot.waitUntil(lambda: not window.tasks.busy and not session.is_modified, timeout=20000)
    assert torch.all(load_file(str(target))["classifier.2.bias"] == 0.25)


def test_edits_wait_while_saving(make_window, qtbot, tmp_path, dialogs):
    window = make_window(Session(seeded(SmallCNN)))
    session = window.session
    with session.busy("saving"):
        window.edit_actions.apply({"op": "freeze", "targets": ["features"]})
    assert dialogs.errors == ["the session is busy: saving"]
    assert session.history.position == 0


def test_quit_with_unsaved_changes_asks(make_window, dialogs):
    window = make_window(Session(seeded(SmallCNN)))
    window.session.apply({"op": "freeze", "targets": ["features"]})
    dialogs.questions.append("cancel")
    window.close()
    assert window.isVisible()
    dialogs.questions.append("discard")
    window.close()
    assert not window.isVisible()


def test_quit_can_save_first(make_window, qtbot, dialogs, tmp_path):
    target = tmp_path / "before_quit.safetensors"
    window = make_window(Session(seeded(SmallCNN)))
    window.session.apply({"op": "freeze", "targets": ["features"]})
    dialogs.questions.append("save")
    dialogs.answer(lambda dialog: dialog.path_field.set_text(str(target)))
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=20000)
    assert target.exists()


def test_export_recipe_and_script(make_window, dialogs, tmp_path):
    window = make_window(Session(seeded(SmallCNN)))
    window.session.apply({"op": "init", "targets": ["features.0"], "method": "normal",
                          "seed": 3})
    recipe = tmp_path / "recipe.json"
    dialogs.paths.append(str(recipe))
    window.file_actions.export_recipe_action.trigger()
    document = json.loads(recipe.read_text())
    assert document["edits"] == window.session.recipe()
    script = tmp_path / "edits.py"
    dialogs.paths.append(str(script))
    window.file_actions.export_script_action.trigger()
    assert dialogs.errors == []
    assert "torch" in script.read_text()


def test_compare_with_file(make_window, qtbot, dialogs, tmp_path):
    session = Session(seeded(SmallCNN))
    other = session.state_dict()
    other = {name: tensor.clone() for name, tensor in other.items()}
    other["classifier.2.bias"] += 1
    path = tmp_path / "other.safetensors"
    save_file(other, str(path))
    window = make_window(session)
    dialogs.paths.append(str(path))
    results = []
    dialogs.answer(lambda dialog: results.append(dialog.comparison))
    window.file_actions.compare_action.trigger()
    qtbot.waitUntil(lambda: bool(results), timeout=20000)
    changed = [row["name"] for row in results[0]["changed"]]
    assert changed == ["classifier.2.bias"]
    assert session.busy_reason is None


def test_pretrained_weights_offline_is_a_clear_message(monkeypatch, tmp_path):
    pytest.importorskip("torchvision")
    from engine.errors import FileError
    from gui import pretrained

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(pretrained.urllib.request, "urlopen", offline)
    assert pretrained.weight_choices("resnet18") == ["IMAGENET1K_V1"]
    with pytest.raises(FileError) as caught:
        pretrained.fetch_weights("resnet18", "IMAGENET1K_V1")
    message = str(caught.value)
    assert "offline" in message
    assert str(tmp_path) in message
    assert not list((tmp_path / "hub" / "checkpoints").glob("*"))  # nothing half-written


def test_open_architecture_with_cached_pretrained_weights(make_window, qtbot, dialogs,
                                                           monkeypatch, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    from gui import pretrained

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = pretrained.cached_path("resnet18", "IMAGENET1K_V1")
    cached.parent.mkdir(parents=True)
    torch.manual_seed(11)
    weights = torchvision.models.resnet18().state_dict()
    torch.save(weights, cached)
    monkeypatch.setattr(pretrained.urllib.request, "urlopen",
                        lambda *a, **k: pytest.fail("must not download a cached file"))
    window = make_window()

    def choose(dialog):
        dialog.wait_for_names()
        qtbot.waitUntil(lambda: dialog.list.count() > 0, timeout=20000)
        dialog.choose("resnet18", pretrained="IMAGENET1K_V1")
        assert "In the local cache" in dialog.cache_label.text()

    dialogs.answer(choose)
    window.file_actions.open_arch_action.trigger()
    wait_opened(qtbot, window, cached)
    assert window.session.mode == "model"
    assert torch.equal(window.session.document.tensor("fc.weight"), weights["fc.weight"])


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_journal_is_written_after_every_edit_and_cleared_on_save(make_window, qtbot,
                                                                  dialogs, tmp_path):
    window = make_window(Session(seeded(SmallCNN)), {"kind": "demo"})
    journal_file = window.journal.path
    assert not journal_file.exists()  # nothing unsaved yet
    window.session.apply({"op": "freeze", "targets": ["features"]})
    document = json.loads(journal_file.read_text())
    assert document["edits"] == window.session.recipe()
    assert document["labels"] == ["Freeze features"]
    window.session.undo()
    assert not journal_file.exists()  # back to the opened state: nothing to restore


def test_after_a_crash_the_next_start_restores_the_edits(make_window, qtbot, dialogs, tmp_path):
    from gui.app import _parse, start

    # A session that "crashed": its journal, written by a process that is gone.
    base = tmp_path / "base.safetensors"
    save_file(state(), str(base))
    crashed_journal = Journal(tmp_path / "journal", pid=dead_pid())
    crashed_journal.opened({"kind": "file", "path": str(base), "arch": None,
                            "arch_args": None, "trust": False, "options": {}})
    crashed = Session.open(str(base))
    crashed.apply({"op": "init", "targets": ["features.0.weight"], "method": "normal",
                   "seed": 5})
    crashed.apply({"op": "rename", "target": "features.0.bias", "to": "features.0.offset"})
    crashed_journal.write(crashed)
    expected = {name: tensor.clone() for name, tensor in crashed.state_dict().items()}

    window = make_window()
    dialogs.questions.append(True)  # "Restore?"
    start(window, _parse([]))
    qtbot.waitUntil(lambda: window.session is not None and not window.tasks.busy, timeout=20000)
    assert dialogs.infos
    assert "Restored 2 unsaved edit(s)" in dialogs.infos[0]
    restored = window.session.state_dict()
    assert list(restored) == list(expected)
    for name, tensor in expected.items():
        assert torch.equal(restored[name], tensor), name
    assert window.session.is_modified
    assert window.history_panel.count() == 3
    assert not crashed_journal.path.exists()  # the orphan is consumed
    assert window.journal.path.exists()  # and this session journals the edits again


def test_a_start_without_orphans_opens_the_demo(make_window, qtbot):
    from gui.app import _parse, start

    window = make_window()
    start(window, _parse([]))
    wait_opened(qtbot, window)
    assert window.session.source.get("demo") is True
    assert window.request == {"kind": "demo"}
