"""The GUI runs no code without the trust dialog, which lists exactly what would run
(issue 8 §1): an edit that attaches an architecture from a .py file, the crash journal's
replay of such an edit, and a file whose pickle names code it computes while loading."""

from __future__ import annotations

import pytest
import torch

from engine import Session
from engine.journal import Journal, read_entry
from tests.models import SmallCNN, seeded


@pytest.fixture
def code_file(tmp_path):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "cnn.py"
    path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
                    "from tests.models import SmallCNN as Net\n")
    return path, marker


def checkpoint() -> Session:
    return Session(checkpoint={name: tensor.clone() for name, tensor in
                               seeded(SmallCNN).state_dict().items()})


def test_attaching_a_py_file_asks_with_the_file_listed(make_window, dialogs, code_file):
    path, marker = code_file
    session = checkpoint()
    window = make_window(session)
    listed = []

    def decline(dialog):
        listed.extend(dialog.globals)
        return False

    dialogs.answer(lambda d: d.set_field("arch", f"{path}:Net"))
    dialogs.answer(decline)
    window.edit_actions.attach_action.trigger()
    assert listed == [f"attach.arch: imports and runs {path} (class Net)"]
    assert session.mode == "checkpoint"
    assert not marker.exists()
    assert dialogs.errors == []
    dialogs.answer(lambda d: d.set_field("arch", f"{path}:Net"))
    dialogs.answer(lambda d: None)  # trust it
    dialogs.answer(lambda d: None)  # the load report
    window.edit_actions.attach_action.trigger()
    assert dialogs.errors == []
    assert session.mode == "model"
    assert marker.exists()
    window.undo_action.trigger()
    assert session.mode == "checkpoint"


def test_restoring_a_journal_with_code_asks_first(make_window, dialogs, qtbot, tmp_path,
                                                  code_file):
    path, _marker = code_file
    source = tmp_path / "cnn.safetensors"
    from safetensors.torch import save_file

    save_file(dict(checkpoint().state_dict()), str(source))
    session = Session.open(source)
    session.apply({"op": "attach", "arch": f"{path}:Net"}, trust=True)
    session.apply({"op": "scale", "targets": ["features.0.weight"], "value": 2.0})
    journal = Journal(tmp_path / "crashed", pid=999_999_997)
    journal.opened({"kind": "file", "path": str(source), "arch": None, "arch_args": None,
                    "trust": False, "options": {}})
    journal.write(session)
    entry = read_entry(journal.path)
    window = make_window()
    listed = []

    def decline(dialog):
        listed.extend(dialog.globals)
        return False

    dialogs.answer(decline)
    window.file_actions.restore_journal(entry)
    qtbot.waitUntil(lambda: not window.tasks.busy and bool(dialogs.errors), timeout=20000)
    assert listed == [f"edits[0]: attach.arch: imports and runs {path} (class Net)"]
    assert "needs trust to restore" in dialogs.errors[0]
    assert window.session is None
    dialogs.answer(lambda d: None)  # trust it
    window.file_actions.restore_journal(entry)
    qtbot.waitUntil(lambda: not window.tasks.busy and window.session is not None,
                    timeout=20000)
    assert window.session.mode == "model"
    assert torch.equal(window.session.document.tensor("features.0.weight"),
                       session.document.tensor("features.0.weight"))


def test_a_file_whose_imports_cannot_be_listed_cannot_be_trusted(make_window, dialogs, qtbot,
                                                                 tmp_path):
    def text(value: str) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value.encode()

    path = tmp_path / "computed.pth"
    path.write_bytes(b"\x80\x04" + text("builtins") + text("getattr") + b"\x93" + text("os")
                     + text("sep") + b"\x86R" + text("system") + b"\x93" + text("true")
                     + b"\x85R.")
    window = make_window()
    seen = []

    def look(dialog):
        seen.append((dialog.globals, dialog.undetermined, dialog.trust_button))
        return False

    dialogs.answer(look)
    window.file_actions.open_path(str(path))
    qtbot.waitUntil(lambda: not window.tasks.busy and bool(seen), timeout=20000)
    globals_, undetermined, button = seen[0]
    assert globals_ == ["builtins.getattr"]
    assert "computed while loading" in undetermined
    assert button is None  # no way to trust an incomplete list
    assert window.session is None


def test_a_hugging_face_folder_with_its_own_code_asks_before_it_runs(make_window, dialogs,
                                                                     qtbot, tmp_path):
    pytest.importorskip("transformers")
    from tests.engine.test_code_trust import custom_code_folder

    folder, marker = tmp_path / "model", tmp_path / "ran.txt"
    custom_code_folder(folder, marker)
    window = make_window()
    listed = []

    def decline(dialog):
        listed.extend(dialog.globals)
        return False

    dialogs.questions.append(True)  # open it as its model
    dialogs.answer(decline)
    window.file_actions.open_path(str(folder))
    assert listed == [f"arch: the Hugging Face config in {folder} needs its own code "
                      "(configuration_evil.py, modeling_evil.py)"]
    assert window.session is None
    assert not marker.exists()
    assert not window.tasks.busy
