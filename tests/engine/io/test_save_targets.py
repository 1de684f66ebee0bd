"""What a save's target asks for: the format its name says, and the modes of what it writes."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from safetensors.torch import load_file

from engine.errors import FileError
from engine.io.saving import target_kind
from engine.session import Session

from .files import assert_same_tensors, mlp_state


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o022
    os.umask(old)


@pytest.mark.parametrize(("name", "format"), [
    ("x.safetensors", "pt"), ("x.pt", "safetensors"), ("x.pth", "folder"),
    ("x.safetensors.index.json", "pt"), ("x.onnx", "safetensors"), ("x.bin", "safetensors"),
])
def test_a_format_that_contradicts_the_name_is_refused(tmp_path, name, format):
    session = Session(checkpoint=mlp_state())
    with pytest.raises(FileError, match=f"format '{format}' contradicts the name") as caught:
        session.save(tmp_path / name, format=format)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary


def test_a_file_format_into_an_existing_folder_is_refused(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(FileError, match="is a folder"):
        Session(checkpoint=mlp_state()).save(tmp_path / "model", format="safetensors")


def test_names_that_say_nothing_take_the_format_given(tmp_path):
    session = Session(checkpoint=mlp_state())
    session.save(tmp_path / "weights.data", format="safetensors")
    assert_same_tensors(load_file(str(tmp_path / "weights.data")), mlp_state())
    session.save(tmp_path / "plain", format="pt")
    assert_same_tensors(torch.load(tmp_path / "plain", weights_only=True), mlp_state())
    assert target_kind(tmp_path / "x.safetensors", "safetensors") == "safetensors"
    assert target_kind(tmp_path / "x.PT") == "pt"
    assert target_kind(tmp_path / "out") == "folder"


def test_new_files_and_folders_follow_the_umask(tmp_path, umask_022):
    session = Session(checkpoint=mlp_state())
    for name in ("m.safetensors", "m.pt"):
        session.save(tmp_path / name)
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    session.save(tmp_path / "sharded.safetensors.index.json", max_shard_size=100)
    for path in tmp_path.glob("sharded*"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path.name
    session.save(tmp_path / "folder", max_shard_size=100)
    assert stat.S_IMODE(os.stat(tmp_path / "folder").st_mode) == 0o755
    for path in (tmp_path / "folder").iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path.name
    os.umask(0o077)
    session.save(tmp_path / "private.safetensors")
    assert stat.S_IMODE(os.stat(tmp_path / "private.safetensors").st_mode) == 0o600


def test_a_file_saved_over_another_keeps_its_mode(tmp_path, umask_022):
    session = Session(checkpoint=mlp_state())
    path = tmp_path / "m.safetensors"
    session.save(path)
    os.chmod(path, 0o640)
    session.apply({"op": "scale", "targets": ["fc1.bias"], "value": 2.0})
    session.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    folder = tmp_path / "set"
    session.save(folder, max_shard_size=100)
    shards = sorted(folder.glob("model-*.safetensors"))
    os.chmod(shards[0], 0o664)
    os.chmod(folder, 0o750)
    session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 2.0})
    session.save(folder, max_shard_size=100)
    assert stat.S_IMODE(os.stat(shards[0]).st_mode) == 0o664
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o750


def test_a_broadcast_view_is_not_silently_written_dense(tmp_path):
    from engine.io import safetensors_writer

    view = torch.zeros(1).expand(10**6, 10**6)  # 4 bytes stored, 4 TB logical
    torch.save({"w": view, "b": torch.ones(2)}, tmp_path / "tiny.pt")
    assert (tmp_path / "tiny.pt").stat().st_size < 4000
    session = Session.open(tmp_path / "tiny.pt")
    with pytest.raises(FileError, match=r"would write 4\.0 TB from 12 B of stored tensors: "
                       r"'w' is a broadcast view .*allow_large_output") as caught:
        session.save(tmp_path / "big.safetensors")
    assert "\n" not in str(caught.value)
    with pytest.raises(FileError, match="are free there"):
        session.save(tmp_path / "big.safetensors", allow_large_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.pt"]
    session.save(tmp_path / "again.pt")  # torch.save keeps the view: no confirmation
    assert (tmp_path / "again.pt").stat().st_size < 4000
    # Confirmed and with room, the dense bytes stream out a chunk at a time.
    medium = torch.arange(3.0).expand(2**17, 3).t()  # 12 B stored, 4.5 MiB written
    monkey = pytest.MonkeyPatch()
    monkey.setattr(safetensors_writer, "CHUNK", 1000)
    try:
        Session(checkpoint={"m": medium}).save(tmp_path / "m.safetensors")
    finally:
        monkey.undo()
    assert torch.equal(load_file(str(tmp_path / "m.safetensors"))["m"], medium.contiguous())


def test_the_cli_asks_for_a_flag_before_writing_a_huge_file(tmp_path, capsys):
    from cli.main import main

    torch.save({"w": torch.zeros(1).expand(2**16, 2**16)}, tmp_path / "v.pt")  # 16 GiB dense
    code = main(["convert", str(tmp_path / "v.pt"), str(tmp_path / "v.safetensors")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unexpected" not in err
    assert err.count("\n") == 1
    assert "--allow-large-output" in err
    assert not (tmp_path / "v.safetensors").exists()
