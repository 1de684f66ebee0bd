"""Bad input: one clear line naming the file, nothing written, the session still usable."""

from __future__ import annotations

import json
import pickle
import zipfile

import pytest
import torch

from engine.errors import EditError, FileError
from engine.io import opening
from engine.io.trust import unsafe_globals
from engine.session import Session

from .files import mlp_state, raw_safetensors, write_safetensors

F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def _refused(path, pattern: str) -> str:
    with pytest.raises(FileError) as caught:
        Session.open(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert "weights_only=False" not in message
    assert pattern in message, message
    return message


@pytest.mark.parametrize(("header", "data", "length", "problem"), [
    (b"", b"", 0, "not a JSON object"),
    ({"a": F32}, b"\x00" * 4, None, "truncated"),
    ({"a": F32}, b"\x00" * 8, 10**12, "more than the"),
    ({"a": F32}, b"", 4096, "truncated"),
    ({"a": F32, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\x00" * 12,
     None, "overlap"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\x00" * 8, None,
     "unused bytes"),
    ({"a": F32}, b"\x00" * 9, None, "unexpected bytes after"),
    ({"a": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8, None,
     "unknown dtype 'Q7'"),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\x00" * 8, None,
     "bad shape"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\x00" * 8, None,
     "needs 12"),
    ({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\x00" * 8,
     None, "needs"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\x00" * 8, None,
     "bad data_offsets"),
    ({"a": "F32"}, b"", None, "not an object"),
    ({"__metadata__": {"format": 1}, "a": F32}, b"\x00" * 8, None, "text to text"),
    ([1, 2], b"", None, "not a JSON object"),
    (b"{not json", b"", None, "not valid JSON"),
    (b"\xff\xfe{}", b"", None, "not UTF-8"),
    (b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {}}', b"\x00" * 8,
     None, "names 'a' twice"),
])
def test_damaged_safetensors(tmp_path, header, data, length, problem):
    path = raw_safetensors(tmp_path / "bad.safetensors", header, data, length)
    _refused(path, problem)


def test_truncated_and_empty_files(tmp_path):
    good = write_safetensors(tmp_path / "good.safetensors", mlp_state())
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-10])
    _refused(cut, "truncated")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _refused(empty, "empty file")
    torch.save(mlp_state(), tmp_path / "good.pt")
    cut_pt = tmp_path / "cut.pt"
    cut_pt.write_bytes((tmp_path / "good.pt").read_bytes()[:200])
    _refused(cut_pt, "not a readable PyTorch checkpoint")


def test_files_that_are_not_checkpoints(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    _refused(tmp_path / "notes.txt", "not a checkpoint")
    (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 4)
    _refused(tmp_path / "random.pt", "not a readable PyTorch checkpoint")
    with zipfile.ZipFile(tmp_path / "archive.pt", "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")
    _refused(tmp_path / "archive.pt", "not a readable PyTorch checkpoint")
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    _refused(tmp_path / "tensor.pt", "single tensor")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    _refused(tmp_path / "list.pt", "holds no state dict")
    _refused(tmp_path / "missing.pt", "no such file")
    (tmp_path / "empty_folder").mkdir()
    _refused(tmp_path / "empty_folder", "holds no weights")


def test_bad_index_files(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text("{broken")
    _refused(tmp_path / "model.safetensors.index.json", "not valid JSON")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": [1]}))
    _refused(tmp_path / "model.safetensors.index.json", "no 'weight_map' object")
    write_safetensors(tmp_path / "model-00001-of-00001.safetensors", mlp_state())
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"ghost": "model-00001-of-00001.safetensors"}}))
    _refused(tmp_path / "model.safetensors.index.json", "does not hold it")


class _Evil:
    """Unpickling this creates a file: the proof that code from a file ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("style", ["zip", "legacy", "nested"])
def test_malicious_pickle_never_runs(tmp_path, style):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if style == "nested":
        torch.save({"state_dict": mlp_state(), "callback": _Evil(str(marker))}, path)
    else:
        torch.save(_Evil(str(marker)), path, _use_new_zipfile_serialization=style == "zip")
    assert opening.needs_trust(path)
    assert "io.open" in unsafe_globals(path)
    message = _refused(path, "io.open")
    assert "trust" in message
    with pytest.raises(FileError):
        opening.inspect_candidates(path)
    with pytest.raises(EditError, match="refused"):
        Session(checkpoint=mlp_state()).apply({"op": "load", "path": str(path)})
    assert not marker.exists()


def test_hand_made_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(_Evil(str(marker)), protocol=4))
    assert "io.open" in unsafe_globals(path)
    _refused(path, "io.open")
    assert not marker.exists()


def test_session_stays_usable_after_bad_files(tmp_path):
    bad = raw_safetensors(tmp_path / "bad.safetensors", {"a": F32}, b"\x00")
    session = Session(checkpoint=mlp_state())
    session.apply({"op": "scale", "targets": ["fc1.bias"], "value": 2.0})
    with pytest.raises(EditError, match=r"load\.path: .*bad\.safetensors: .*truncated"):
        session.apply({"op": "load", "path": str(bad)})
    with pytest.raises(FileError):
        Session.open(bad)
    session.undo()
    assert torch.equal(session.document.tensor("fc1.bias"), mlp_state()["fc1.bias"])
    session.save(tmp_path / "fine.safetensors")
    assert Session.open(tmp_path / "fine.safetensors").document.tensor_names() == list(mlp_state())
