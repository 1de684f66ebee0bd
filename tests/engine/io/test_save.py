"""Saving: every format to every format, ties, wrappers, shards, folders, atomicity."""

from __future__ import annotations

import filecmp
import json
import os
import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine.errors import FileError
from engine.io import safetensors_writer
from engine.progress import Cancelled, Progress
from engine.session import Session
from tests.models import MLP, seeded

from .files import (
    assert_same_tensors,
    mixed_tensors,
    mlp_state,
    session_tensors,
    tied_state,
    write_safetensors,
)

FORMATS = ["safetensors", "pt", "sharded", "folder"]


def _write_source(folder, kind, tensors):
    """A file or folder of `kind` holding `tensors` (through Weightsmith itself)."""
    session = Session(checkpoint=dict(tensors))
    return _save(session, folder, kind)


def _save(session, folder, kind, **options):
    target = {"safetensors": folder / "out.safetensors", "pt": folder / "out.pt",
              "sharded": folder / "out.safetensors.index.json", "folder": folder / "out"}[kind]
    if kind == "sharded":
        options.setdefault("max_shard_size", 64)
    session.save(target, **options)
    return target


@pytest.mark.parametrize("source_kind", FORMATS)
@pytest.mark.parametrize("target_kind", FORMATS)
def test_round_trip_between_every_format(tmp_path, source_kind, target_kind):
    tensors = {**mixed_tensors(), **{f"lm.{k}": v for k, v in tied_state().items()}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    source = _write_source(tmp_path / "a", source_kind, tensors)
    opened = Session.open(source)
    assert_same_tensors(session_tensors(opened), tensors)
    target = _save(opened, tmp_path / "b", target_kind)
    reopened = Session.open(target)
    assert_same_tensors(session_tensors(reopened), tensors)
    assert reopened.document.tie_groups() == [["lm.embed.weight", "lm.lm_head.weight"]]


def test_unedited_safetensors_saves_byte_identical(tmp_path):
    path = write_safetensors(tmp_path / "a.safetensors", mlp_state())
    session = Session.open(path)
    result = session.save(tmp_path / "b.safetensors")
    assert filecmp.cmp(path, tmp_path / "b.safetensors", shallow=False)
    assert result["copied"] == [str(tmp_path / "b.safetensors")]


def test_ties_stored_once_on_request_are_named_in_metadata(tmp_path):
    session = Session(checkpoint=tied_state())
    session.save(tmp_path / "lm.safetensors", ties="once")
    with safe_open(str(tmp_path / "lm.safetensors"), "pt") as handle:
        assert "lm_head.weight" not in list(handle.keys())
        metadata = handle.metadata()
    assert metadata["format"] == "pt"
    assert json.loads(metadata["weightsmith.aliases"]) == {"lm_head.weight": "embed.weight"}
    session.save(tmp_path / "lm.pt")
    loaded = torch.load(tmp_path / "lm.pt", weights_only=True)
    assert loaded["embed.weight"].data_ptr() == loaded["lm_head.weight"].data_ptr()


def test_freeze_state_and_recipe_go_in_metadata(tmp_path):
    torch.save(mlp_state(), tmp_path / "m.pt")
    session = Session.open(tmp_path / "m.pt", arch="tests/models.py:MLP")
    session.apply({"op": "freeze", "targets": ["fc1"]})
    session.apply({"op": "scale", "targets": ["fc2.weight"], "value": 0.5})
    session.save(tmp_path / "m.safetensors")
    metadata = safe_open(str(tmp_path / "m.safetensors"), "pt").metadata()
    assert json.loads(metadata["weightsmith.frozen"]) == ["fc1.weight", "fc1.bias"]
    assert [edit["op"] for edit in json.loads(metadata["weightsmith.recipe"])] == ["freeze",
                                                                                 "scale"]
    again = Session.open(tmp_path / "m.safetensors", arch="tests/models.py:MLP")
    assert not again.model.fc1.weight.requires_grad
    assert again.model.fc2.weight.requires_grad
    assert again.source["frozen"] == ["fc1.bias", "fc1.weight"]


def test_nested_checkpoint_saves_back_its_wrapper(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 4, "state_dict": mlp_state(), "hyper_parameters": {"lr": 0.1}}, path)
    session = Session.open(path)
    session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 2.0})
    result = session.save(tmp_path / "edited.ckpt")
    saved = torch.load(tmp_path / "edited.ckpt", weights_only=True)
    assert saved["epoch"] == 4
    assert saved["hyper_parameters"] == {"lr": 0.1}
    assert torch.equal(saved["state_dict"]["fc1.weight"], mlp_state()["fc1.weight"] * 2)
    assert result["notes"]
    session.save(tmp_path / "bare.pt", include_extras=False)
    assert set(torch.load(tmp_path / "bare.pt", weights_only=True)) == set(mlp_state())
    st_result = session.save(tmp_path / "edited.safetensors")
    assert any("not saved" in note for note in st_result["notes"])


def test_whole_model_on_request(tmp_path):
    torch.save(seeded(MLP), tmp_path / "whole.pt")
    session = Session.open(tmp_path / "whole.pt", trust=True)
    session.save(tmp_path / "again.pt", whole_model=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.load(tmp_path / "again.pt", weights_only=False)
    assert isinstance(model, MLP)
    with pytest.raises(FileError, match="whole_model"):
        Session(checkpoint=mlp_state()).save(tmp_path / "x.pt", whole_model=True)


def test_sharded_save_keeps_layout_and_copies_unchanged_shards(tmp_path):
    tensors = {f"layer{i}.weight": torch.full((16,), float(i)) for i in range(6)}
    source = tmp_path / "src"
    source.mkdir()
    Session(checkpoint=tensors).save(source / "model.safetensors.index.json",
                                     max_shard_size=128)
    shards = sorted(p.name for p in source.glob("model-*.safetensors"))
    assert shards == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    session = Session.open(source)
    session.apply({"op": "add", "targets": ["layer3.weight"], "value": 1.0})
    result = session.save(tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("model-*.safetensors")) == shards
    edited_shard = json.loads((out / "model.safetensors.index.json").read_text())[
        "weight_map"]["layer3.weight"]
    for shard in shards:
        same = filecmp.cmp(source / shard, out / shard, shallow=False)
        assert same == (shard != edited_shard)
    assert str(out / edited_shard) in result["files"]
    assert len(result["copied"]) == 2
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == 6 * 16 * 4
    expected = dict(tensors)
    expected["layer3.weight"] = expected["layer3.weight"] + 1
    assert_same_tensors(session_tensors(Session.open(out)), expected)


def test_every_shard_has_format_metadata_and_the_save_id(tmp_path):
    Session(checkpoint=mlp_state()).save(tmp_path / "m.safetensors.index.json",
                                         max_shard_size=100)
    index = json.loads((tmp_path / "m.safetensors.index.json").read_text())["metadata"]
    save_id = index["weightsmith.save_id"]
    shards = sorted(tmp_path.glob("m-*.safetensors"))
    assert index["weightsmith.shards"] == {shard.name: save_id for shard in shards}
    for shard in shards:
        assert safe_open(str(shard), "pt").metadata() == {"format": "pt",
                                                          "weightsmith.save_id": save_id}


def test_resharding_in_place_removes_stale_shards(tmp_path):
    folder = tmp_path / "model"
    session = Session(checkpoint=mlp_state())
    session.save(folder, max_shard_size=100)
    assert len(list(folder.glob("model-*.safetensors"))) > 1
    reopened = Session.open(folder)
    reopened.save(folder, max_shard_size=10**9)
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors"]
    assert_same_tensors(session_tensors(Session.open(folder)), mlp_state())


def test_hf_folder_copies_other_files(tmp_path):
    source = tmp_path / "hf"
    source.mkdir()
    write_safetensors(source / "model.safetensors", mlp_state())
    for name in ("config.json", "tokenizer.json", "generation_config.json"):
        (source / name).write_text(json.dumps({"name": name}))
    (source / "pytorch_model.bin").write_bytes(b"stale weights are not copied")
    session = Session.open(source)
    session.apply({"op": "scale", "targets": ["fc1.bias"], "value": 3.0})
    session.save(tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["config.json", "generation_config.json", "model.safetensors",
                     "tokenizer.json"]
    assert (tmp_path / "out" / "config.json").read_text() == (source / "config.json").read_text()


def test_hf_bin_folder_stays_bin_unless_asked(tmp_path):
    source = tmp_path / "hf"
    source.mkdir()
    torch.save(mlp_state(), source / "pytorch_model.bin")
    (source / "config.json").write_text("{}")
    session = Session.open(source)
    session.save(tmp_path / "same")
    assert (tmp_path / "same" / "pytorch_model.bin").is_file()
    session.save(tmp_path / "converted", weights_format="safetensors")
    assert (tmp_path / "converted" / "model.safetensors").is_file()
    assert_same_tensors(load_file(str(tmp_path / "converted" / "model.safetensors")),
                        mlp_state())


def test_saving_over_the_open_file(tmp_path):
    tensors = {"big": torch.arange(2**21, dtype=torch.float32), "small": torch.ones(3)}
    path = write_safetensors(tmp_path / "m.safetensors", tensors)
    session = Session.open(path)
    session.apply({"op": "add", "targets": ["small"], "value": 1.0})
    session.save(path)  # "big" was never read: copied from the very file being replaced
    session.apply({"op": "add", "targets": ["small"], "value": 1.0})
    session.save(path)
    expected = {"big": tensors["big"], "small": torch.full((3,), 3.0)}
    assert_same_tensors(load_file(str(path)), expected)
    assert_same_tensors(session_tensors(session), expected)


def test_saving_over_the_open_sharded_folder(tmp_path):
    tensors = {f"t{i}": torch.full((8,), float(i)) for i in range(4)}
    folder = tmp_path / "model"
    Session(checkpoint=tensors).save(folder, max_shard_size=64)
    session = Session.open(folder)
    session.apply({"op": "scale", "targets": ["t0"], "value": 10.0})
    result = session.save(folder)
    assert result["copied"]  # shards without the edit were left as they are
    expected = {**tensors, "t0": torch.zeros(8)}
    assert_same_tensors(session_tensors(Session.open(folder)), expected)
    assert_same_tensors(session_tensors(session), expected)


def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = write_safetensors(tmp_path / "m.safetensors", mlp_state())
    before = path.read_bytes()
    session = Session.open(path)
    session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 2.0})

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors_writer, "write_tensor", broken)
    with pytest.raises(FileError, match=r"m\.safetensors: could not be written \(No space"):
        session.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # no temporary left behind
    assert session.is_modified


def test_cancelled_save_leaves_the_old_files(tmp_path):
    folder = tmp_path / "model"
    tensors = {f"t{i}": torch.full((8,), float(i)) for i in range(4)}
    Session(checkpoint=tensors).save(folder, max_shard_size=64)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    session = Session.open(folder)
    session.apply({"op": "scale", "targets": ["t0", "t3"], "value": 10.0})
    progress = Progress()
    calls = []

    def cancel_midway(fraction, text):
        calls.append(fraction)
        if len(calls) == 2:
            progress.cancel()

    progress._callback = cancel_midway
    with pytest.raises(Cancelled):
        session.save(folder, progress=progress)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    with pytest.raises(Cancelled):
        session.save(tmp_path / "new", progress=progress)
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_bad_targets_are_clear_errors(tmp_path):
    session = Session(checkpoint=mlp_state())
    with pytest.raises(FileError, match="unknown output format"):
        session.save(tmp_path / "x.onnx")
    with pytest.raises(FileError, match="does not exist"):
        session.save(tmp_path / "missing" / "x.safetensors")
    with pytest.raises(FileError, match="not a size"):
        session.save(tmp_path / "x.safetensors", max_shard_size="lots")


def test_save_marks_the_session_saved(tmp_path):
    session = Session(checkpoint=mlp_state())
    session.apply({"op": "scale", "targets": ["fc1.bias"], "value": 2.0})
    assert session.is_modified
    session.save(tmp_path / "m.safetensors")
    assert not session.is_modified


def test_three_gib_tensor_has_no_size_limit(tmp_path, monkeypatch):
    """Chunked reads and writes: shrink the chunk so a small tensor crosses many chunks."""
    from engine.io import sources

    monkeypatch.setattr(sources, "CHUNK", 1000)
    monkeypatch.setattr(safetensors_writer, "CHUNK", 1000)
    tensors = {"w": torch.arange(100_003, dtype=torch.float32)}
    path = write_safetensors(tmp_path / "w.safetensors", tensors)
    session = Session.open(path)
    session.apply({"op": "add", "targets": ["w"], "value": 1.0})
    session.save(tmp_path / "out.safetensors")
    assert torch.equal(load_file(str(tmp_path / "out.safetensors"))["w"], tensors["w"] + 1)


def test_transformers_loads_a_weightsmith_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=20,
                                     n_positions=16, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    original = transformers.GPT2LMHeadModel(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original.save_pretrained(tmp_path / "hf")
    for arch in (None, "hf"):
        session = Session.open(tmp_path / "hf", arch=arch)
        session.apply({"op": "scale", "targets": ["transformer.wte.weight"], "value": 2.0})
        target = tmp_path / f"out-{arch}"
        session.save(target, max_shard_size=2000)
        assert (target / "model.safetensors.index.json").is_file()
        assert (target / "config.json").is_file()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = transformers.GPT2LMHeadModel.from_pretrained(target)
        assert torch.equal(loaded.transformer.wte.weight, original.transformer.wte.weight * 2)
        assert loaded.lm_head.weight is loaded.transformer.wte.weight
        assert Session.open(target).document.tie_groups() == (
            [] if arch is None else [["transformer.wte.weight", "lm_head.weight"]])


def test_unsavable_dtype_is_named(tmp_path):
    dtype = getattr(torch, "float8_e5m2fnuz", None)
    if dtype is None:
        pytest.skip("this torch has no float8_e5m2fnuz")
    session = Session(checkpoint={"q": torch.zeros(2).to(dtype)})
    with pytest.raises(FileError, match="'q'"):
        session.save(tmp_path / "q.safetensors")


def test_sharded_output_of_one_shard_gets_numbered_name(tmp_path):
    save_file(mlp_state(), str(tmp_path / "in.safetensors"))
    Session.open(tmp_path / "in.safetensors").save(tmp_path / "x.safetensors.index.json")
    index = json.loads((tmp_path / "x.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {"x-00001-of-00001.safetensors"}


def test_saving_over_the_open_pt_file(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"state_dict": mlp_state(), "epoch": 2}, path)
    session = Session.open(path)  # memory-mapped by torch.load(mmap=True)
    session.apply({"op": "scale", "targets": ["fc2.weight"], "value": -1.0})
    session.save(path)
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 2
    assert torch.equal(saved["state_dict"]["fc2.weight"], -mlp_state()["fc2.weight"])
    assert torch.equal(saved["state_dict"]["fc1.weight"], mlp_state()["fc1.weight"])
    session.undo()
    assert torch.equal(session.document.tensor("fc2.weight"), mlp_state()["fc2.weight"])


def test_trusted_wrapper_holding_a_module_gets_it_back(tmp_path):
    path = tmp_path / "yolo_style.pt"
    torch.save({"model": seeded(MLP), "epoch": 9}, path)
    session = Session.open(path, trust=True)
    assert session.mode == "model"
    session.apply({"op": "scale", "targets": ["fc1.bias"], "value": 0.0})
    session.save(tmp_path / "out.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = torch.load(tmp_path / "out.pt", weights_only=False)
    assert saved["epoch"] == 9
    assert isinstance(saved["model"], MLP)
    assert torch.equal(saved["model"].fc1.bias, torch.zeros(8))


def test_caller_metadata_is_written(tmp_path):
    session = Session(checkpoint=mlp_state())
    session.save(tmp_path / "m.safetensors", metadata={"author": "me"})
    assert safe_open(str(tmp_path / "m.safetensors"), "pt").metadata()["author"] == "me"
    session.save(tmp_path / "s.safetensors.index.json", metadata={"author": "me"},
                 max_shard_size=100)
    index = json.loads((tmp_path / "s.safetensors.index.json").read_text())
    assert index["metadata"]["author"] == "me"
    with pytest.raises(FileError, match="metadata"):
        session.save(tmp_path / "x.safetensors", metadata={"n": 1})


def test_one_failing_shard_writer_stops_the_save(tmp_path, monkeypatch):
    tensors = {f"t{i}": torch.full((8,), float(i)) for i in range(6)}
    folder = tmp_path / "model"
    Session(checkpoint=tensors).save(folder, max_shard_size=64)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    session = Session.open(folder)
    session.apply({"op": "scale", "targets": ["t0", "t5"], "value": 3.0})
    real = safetensors_writer.write_tensor
    calls = []

    def fail_once(fd, tensor, advance):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        real(fd, tensor, advance)

    monkeypatch.setattr(safetensors_writer, "write_tensor", fail_once)
    with pytest.raises(FileError, match="Input/output error"):
        session.save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    calls.clear()
    with pytest.raises(FileError):
        session.save(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
