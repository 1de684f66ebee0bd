"""engine.journal: the crash journal is written atomically, found after a crash, replayed
exactly, and follows saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from engine import EditError, Session
from engine.journal import Journal, config_dir, describe_request, read_entry, restore
from tests.models import SmallCNN, seeded


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def base_file(tmp_path):
    path = tmp_path / "base.safetensors"
    save_file({name: t.clone() for name, t in seeded(SmallCNN).state_dict().items()}, str(path))
    return path


def file_request(path) -> dict:
    return {"kind": "file", "path": str(path), "arch": None, "arch_args": None,
            "trust": False, "options": {}}


def test_config_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTSMITH_CONFIG_DIR", str(tmp_path / "cfg"))
    assert config_dir() == tmp_path / "cfg"
    assert Journal().directory == tmp_path / "cfg" / "journal"


def test_nothing_unsaved_means_no_journal_file(tmp_path, base_file):
    journal = Journal(tmp_path / "j")
    session = Session.open(str(base_file))
    journal.opened(file_request(base_file))
    journal.write(session)
    assert not journal.path.exists()
    session.apply({"op": "scale", "targets": ["features.0.weight"], "value": 2.0})
    journal.write(session)
    assert journal.path.exists()
    document = json.loads(journal.path.read_text())
    assert document["edits"] == session.recipe()
    assert document["pid"] == os.getpid()
    journal.clear()
    assert not journal.path.exists()


def test_a_running_process_is_not_an_orphan(tmp_path, base_file):
    journal = Journal(tmp_path / "j")
    session = Session.open(str(base_file))
    journal.opened(file_request(base_file))
    session.apply({"op": "scale", "targets": ["features.0.weight"], "value": 2.0})
    journal.write(session)
    assert journal.path.exists()
    # Another start while this process still runs: its journal is not an orphan.
    assert Journal(tmp_path / "j", pid=os.getpid() + 1).orphans() == []


def test_restore_replays_the_unsaved_edits_bit_for_bit(tmp_path, base_file):
    crashed = Journal(tmp_path / "j", pid=dead_pid())
    session = Session.open(str(base_file))
    crashed.opened(file_request(base_file))
    session.apply({"op": "init", "targets": ["features.*.weight"], "method": "normal"})
    session.apply({"op": "rename", "target": "classifier.2.bias", "to": "head.bias"})
    crashed.write(session)
    expected = {name: t.clone() for name, t in session.state_dict().items()}

    orphans = Journal(tmp_path / "j").orphans()
    assert [entry.path for entry in orphans] == [crashed.path]
    entry = orphans[0]
    assert entry.title == "base.safetensors"
    assert len(entry.labels) == 2
    restored, request, labels = restore(entry)
    assert request["path"] == str(base_file)
    assert labels == entry.labels
    assert list(restored.state_dict()) == list(expected)
    for name, tensor in expected.items():
        assert torch.equal(restored.document.tensor(name), tensor), name
    assert restored.is_modified


def test_after_a_save_only_later_edits_are_replayed(tmp_path, base_file):
    journal = Journal(tmp_path / "j", pid=dead_pid())
    session = Session.open(str(base_file))
    journal.opened(file_request(base_file))
    session.apply({"op": "scale", "targets": ["features.0.weight"], "value": 2.0})
    saved = tmp_path / "saved.safetensors"
    session.save(str(saved))
    journal.saved(file_request(saved), session)
    assert not journal.path.exists()  # everything is saved
    session.apply({"op": "add", "targets": ["features.0.bias"], "value": 1.0})
    journal.write(session)
    entry = read_entry(journal.path)
    assert [base.request["path"] for base in entry.bases] == [str(saved), str(base_file)]
    restored, request, labels = restore(entry)
    assert request["path"] == str(saved)
    assert len(labels) == 1
    assert torch.equal(restored.document.tensor("features.0.bias"),
                       session.document.tensor("features.0.bias"))
    assert torch.equal(restored.document.tensor("features.0.weight"),
                       session.document.tensor("features.0.weight"))


def test_a_trusted_file_is_not_reopened_without_asking(tmp_path, base_file):
    journal = Journal(tmp_path / "j", pid=dead_pid())
    session = Session.open(str(base_file))
    journal.opened({**file_request(base_file), "trust": True})
    session.apply({"op": "scale", "targets": ["features.0.weight"], "value": 2.0})
    journal.write(session)
    entry = read_entry(journal.path)
    with pytest.raises(EditError, match="needs trust"):
        restore(entry)
    restored, _, _ = restore(entry, allow_trust=True)
    assert torch.equal(restored.document.tensor("features.0.weight"),
                       session.document.tensor("features.0.weight"))


def test_damaged_journals_are_ignored(tmp_path):
    folder = tmp_path / "j"
    folder.mkdir()
    (folder / "session-999999.json").write_text("{not json")
    (folder / "session-999998.json").write_text(json.dumps({"something": "else"}))
    assert Journal(folder).orphans() == []


def test_describe_request():
    assert describe_request({"kind": "demo"}) == "the demo model"
    assert describe_request({"kind": "file", "path": "/a/b.pt", "arch": "torchvision:x"}) \
        == "b.pt as torchvision:x"
    assert describe_request({"kind": "arch", "arch": "torchvision:resnet18",
                             "weights": None}) == "torchvision:resnet18"
    assert describe_request(None) == "a document built in code"
