"""Opening every format: lazy safetensors, shards, nested checkpoints, prefixes, trust."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import save_file

from engine.errors import FileError
from engine.io import opening
from engine.io.trust import unsafe_globals
from engine.listing import listing
from engine.session import Session
from tests.models import MLP, TiedLM, seeded

from .files import assert_same_tensors, mixed_tensors, mlp_state, session_tensors, tied_state
from .files import write_safetensors as write_st


def test_safetensors_opens_lazily_with_every_dtype(tmp_path):
    path = write_st(tmp_path / "m.safetensors")
    session = Session.open(path)
    assert session.mode == "checkpoint"
    assert session.source["format"] == "safetensors"
    slots = session.checkpoint.entries
    result = listing(session)
    assert sorted(row["name"] for row in result["tensors"]) == sorted(mixed_tensors())
    assert not any(slot.loaded for slot in slots.values())  # the listing read no tensor
    assert_same_tensors(session_tensors(session), mixed_tensors())
    assert slots["a.weight"].loaded


def test_lazy_tensor_edits_stay_in_memory(tmp_path):
    tensors = {"w": torch.arange(2**21, dtype=torch.float32)}  # 8 MiB: memory-mapped
    path = write_st(tmp_path / "big.safetensors", tensors)
    before = path.read_bytes()
    session = Session.open(path)
    session.apply({"op": "scale", "targets": ["w"], "value": 2.0})
    assert session.document.tensor("w")[3].item() == 6.0
    session.undo()
    assert torch.equal(session.document.tensor("w"), tensors["w"])
    session.redo()
    assert path.read_bytes() == before  # a copy-on-write map never writes the file


def test_sharded_index_opens_every_shard(tmp_path):
    state = mlp_state()
    names = list(state)
    save_file({n: state[n] for n in names[:2]}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({n: state[n] for n in names[2:]}, str(tmp_path / "model-00002-of-00002.safetensors"))
    weight_map = {n: f"model-0000{1 if i < 2 else 2}-of-00002.safetensors"
                  for i, n in enumerate(names)}
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 1}, "weight_map": weight_map}))
    (tmp_path / "config.json").write_text("{}")
    session = Session.open(tmp_path)
    assert session.source["layout"] == "sharded"
    assert session.source["other_files"] == ["config.json"]
    assert sorted(session.document.tensor_names()) == sorted(names)
    assert_same_tensors(session_tensors(session), state)


def test_index_naming_a_missing_shard_is_refused(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(FileError, match="missing"):
        Session.open(tmp_path)


def test_index_cannot_point_outside_its_folder(tmp_path):
    write_st(tmp_path / "elsewhere.safetensors")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a.weight": "../elsewhere.safetensors"}}))
    with pytest.raises(FileError, match="leaves the folder"):
        Session.open(folder)


def test_hf_folder_with_pytorch_model_bin(tmp_path):
    torch.save(mlp_state(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text('{"model_type": "x"}')
    session = Session.open(tmp_path)
    assert session.source["format"] == "pt"
    assert session.source["weights_name"] == "pytorch_model.bin"
    assert_same_tensors(session_tensors(session), mlp_state())


def test_lightning_checkpoint_lists_candidates_and_keeps_extras(tmp_path):
    path = tmp_path / "last.ckpt"
    optimizer = torch.optim.SGD(seeded(MLP).parameters(), lr=0.1, momentum=0.9)
    torch.save({"epoch": 4, "state_dict": mlp_state(), "ema": mlp_state(),
                "optimizer_states": [optimizer.state_dict()],
                "hyper_parameters": {"lr": 0.1}}, path)
    assert opening.inspect_candidates(path) == ["state_dict", "ema"]
    session = Session.open(path)
    assert session.source["nested_key"] == "state_dict"
    assert session.source["candidates"] == ["state_dict", "ema"]
    assert session.source["extras"] == ["epoch", "ema", "optimizer_states", "hyper_parameters"]
    assert set(session.checkpoint.extras) == {"epoch", "ema", "optimizer_states",
                                              "hyper_parameters"}
    chosen = Session.open(path, choice="ema")
    assert chosen.source["nested_key"] == "ema"
    with pytest.raises(FileError, match=r"no state dict at 'nope' \(found: 'state_dict', 'ema'\)"):
        Session.open(path, choice="nope")


def test_deeper_candidates_are_found(tmp_path):
    path = tmp_path / "nested.pt"
    torch.save({"callbacks": {"EMA": mlp_state()}, "step": 1}, path)
    assert opening.inspect_candidates(path) == ["callbacks/EMA"]
    assert sorted(Session.open(path).document.tensor_names()) == sorted(mlp_state())


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefixes_are_detected_and_stripped_on_request(tmp_path, prefix):
    path = tmp_path / "ddp.pt"
    torch.save({prefix + name: tensor for name, tensor in mlp_state().items()}, path)
    kept = Session.open(path)
    assert kept.source["prefix"] == prefix
    assert all(name.startswith(prefix) for name in kept.document.tensor_names())
    stripped = Session.open(path, strip_prefix=True)
    assert stripped.document.tensor_names() == list(mlp_state())
    assert stripped.source["stripped_prefix"] == prefix
    model = Session.open(path, arch="tests/models.py:MLP")  # stripped to fit the model
    assert model.mode == "model"
    assert_same_tensors(model.model.state_dict(), mlp_state())


def test_detect_prefix_needs_every_name():
    assert opening.detect_prefix(["module.a", "module.b"]) == "module."
    assert opening.detect_prefix(["module.a", "b"]) == ""
    assert opening.detect_prefix([]) == ""


def test_open_with_arch_keeps_ties_and_reports(tmp_path):
    path = tmp_path / "lm.safetensors"
    state = tied_state()
    save_file({k: v for k, v in state.items() if k != "lm_head.weight"}, str(path))
    session = Session.open(path, arch="tests/models.py:TiedLM")
    model = session.model
    assert model.lm_head.weight is model.embed.weight  # the file stored it once
    assert session.source["load_report"]["missing"] == []
    assert_same_tensors(model.state_dict(), state)


def test_open_with_arch_is_strict_unless_asked(tmp_path):
    path = tmp_path / "partial.pt"
    state = mlp_state()
    del state["fc2.bias"]
    torch.save(state, path)
    with pytest.raises(FileError, match=r"does not fit .*fc2\.bias"):
        Session.open(path, arch="tests/models.py:MLP")
    session = Session.open(path, arch="tests/models.py:MLP", strict=False)
    assert session.source["load_report"]["missing"] == ["fc2.bias"]


def test_file_tie_is_not_forced_on_untied_model(tmp_path):
    shared = torch.randn(8, 6)
    state = mlp_state()
    torch.save({**state, "fc1.weight": shared}, tmp_path / "a.pt")
    session = Session.open(tmp_path / "a.pt", arch="tests/models.py:MLP")
    assert session.document.tie_groups() == []


def test_pickled_model_is_refused_without_trust(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(seeded(MLP), path)
    assert opening.needs_trust(path)
    assert "tests.models.MLP" in unsafe_globals(path)
    with pytest.raises(FileError) as caught:
        Session.open(path)
    message = str(caught.value)
    assert str(path) in message
    assert "tests.models.MLP" in message
    assert "weights_only" not in message
    assert "\n" not in message
    trusted = Session.open(path, trust=True)
    assert trusted.mode == "model"
    assert isinstance(trusted.model, MLP)


def test_torchscript_needs_trust(tmp_path):
    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(seeded(MLP)), str(path))
    assert opening.needs_trust(path)
    assert any(name.startswith("torchscript:") for name in unsafe_globals(path))
    with pytest.raises(FileError, match="TorchScript"):
        Session.open(path)
    session = Session.open(path, trust=True)
    assert_same_tensors(session.state_dict(), mlp_state())


def test_plain_files_need_no_trust(tmp_path):
    torch.save(mlp_state(), tmp_path / "a.pt")
    write_st(tmp_path / "b.safetensors")
    assert not opening.needs_trust(tmp_path / "a.pt")
    assert not opening.needs_trust(tmp_path / "b.safetensors")
    assert unsafe_globals(tmp_path / "a.pt") == []


def test_legacy_format_opens(tmp_path):
    path = tmp_path / "old.pth"
    torch.save(mlp_state(), path, _use_new_zipfile_serialization=False)
    assert_same_tensors(Session.open(path).state_dict(), mlp_state())


def test_tied_pt_opens_tied(tmp_path):
    torch.save(tied_state(), tmp_path / "lm.pt")
    session = Session.open(tmp_path / "lm.pt")
    assert session.document.tie_groups() == [["embed.weight", "lm_head.weight"]]


def test_tensors_mixed_with_other_entries(tmp_path):
    torch.save({"w": torch.ones(2), "step": 3}, tmp_path / "loose.pt")
    session = Session.open(tmp_path / "loose.pt")
    assert session.document.tensor_names() == ["w"]
    assert session.checkpoint.extras == {"step": 3}


def test_read_state_dict_keeps_its_contract(tmp_path):
    from engine.io import read_state_dict

    torch.save({"state_dict": mlp_state(), "epoch": 1}, tmp_path / "n.ckpt")
    assert_same_tensors(read_state_dict(tmp_path / "n.ckpt"), mlp_state())
    write_st(tmp_path / "m.safetensors", mlp_state())
    assert_same_tensors(read_state_dict(tmp_path / "m.safetensors"), mlp_state())


def test_cancelled_open_returns_nothing(tmp_path):
    from engine.progress import Cancelled, Progress

    write_st(tmp_path / "m.safetensors")
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        Session.open(tmp_path / "m.safetensors", progress=progress)


def test_tied_model_listing_from_file(tmp_path):
    torch.save(seeded(TiedLM).state_dict(), tmp_path / "lm.pt")
    result = listing(Session.open(tmp_path / "lm.pt", arch="tests/models.py:TiedLM"))
    groups = {row["name"]: row["tie_group"] for row in result["tensors"]}
    assert groups["embed.weight"] == groups["lm_head.weight"] is not None
    assert result["totals"]["stored_tensors"] == len(result["tensors"]) - 1


def test_timm_architecture_from_a_file(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = timm.create_model("test_resnet", pretrained=False)
    save_file(model.state_dict(), str(tmp_path / "r.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = Session.open(tmp_path / "r.safetensors", arch="timm:test_resnet")
    assert session.mode == "model"
    assert_same_tensors(session.model.state_dict(), model.state_dict())


def test_many_mapped_tensors_cost_one_descriptor(tmp_path, monkeypatch):
    import os

    from engine.io import sources

    monkeypatch.setattr(sources, "MAP_THRESHOLD", 0)  # map every tensor
    tensors = {f"t{i}": torch.full((4,), float(i)) for i in range(1500)}
    path = write_st(tmp_path / "many.safetensors", tensors)
    before = len(os.listdir("/proc/self/fd"))
    session = Session.open(path)
    assert_same_tensors(session_tensors(session), tensors)
    assert len(os.listdir("/proc/self/fd")) - before <= 2
    fresh = Session.open(path)
    fresh.apply({"op": "copy", "source": "t7", "to": "t7_copy"})  # both still unread
    fresh.apply({"op": "add", "targets": ["t7_copy"], "value": 1.0})
    assert torch.equal(fresh.document.tensor("t7"), tensors["t7"])  # the copy shares no memory
    assert torch.equal(fresh.document.tensor("t7_copy"), tensors["t7"] + 1)
