"""Ties survive the round trip in the loader their user uses: strict load_state_dict of
load_file for plain models (every name stored), safetensors' load_model when stored once,
transformers' from_pretrained for Hugging Face folders; Weightsmith ties them again."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file

from cli.main import main
from engine.session import Session

from .files import as_bytes

TIE = {"op": "tie", "target": "layer1.0.conv2.weight", "source": "layer1.0.conv1.weight"}


def resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18()


def tied_resnet_session() -> Session:
    session = Session(resnet())
    session.apply(dict(TIE))
    return session


def test_a_user_tie_loads_with_strict_load_state_dict(tmp_path):
    session = tied_resnet_session()
    result = session.save(tmp_path / "r.safetensors")
    fresh = torchvision.models.resnet18()
    fresh.load_state_dict(load_file(str(tmp_path / "r.safetensors")))  # strict
    expected = session.model.state_dict()
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert result["ties"] == {"mode": "every_name", "groups": 1, "extra_bytes": 64 * 64 * 9 * 4,
                              "left_out": [],
                              "loads_with": "strict load_state_dict(load_file(...)) loads it "
                                            "into any model"}
    metadata = safe_open(str(tmp_path / "r.safetensors"), "pt").metadata()
    assert json.loads(metadata["weightsmith.ties"]) == [["layer1.0.conv1.weight",
                                                         "layer1.0.conv2.weight"]]
    again = Session.open(tmp_path / "r.safetensors")
    assert again.document.tie_groups() == [["layer1.0.conv1.weight", "layer1.0.conv2.weight"]]


def test_stored_once_loads_with_safetensors_load_model(tmp_path):
    session = tied_resnet_session()
    result = session.save(tmp_path / "r.safetensors", ties="once")
    assert result["ties"]["left_out"] == ["layer1.0.conv2.weight"]
    assert result["ties"]["extra_bytes"] == 0
    model = resnet()
    model.layer1[0].conv2.weight = model.layer1[0].conv1.weight
    load_model(model, str(tmp_path / "r.safetensors"))  # strict: the tie is the model's
    assert torch.equal(model.layer1[0].conv2.weight, session.model.layer1[0].conv1.weight)
    with pytest.raises(RuntimeError, match="Missing key"):
        torchvision.models.resnet18().load_state_dict(load_file(str(tmp_path / "r.safetensors")))


def test_copies_that_differ_are_not_tied_again(tmp_path):
    path = tmp_path / "t.safetensors"
    session = Session(checkpoint={"a": torch.ones(3), "b": torch.zeros(3)})
    session.apply({"op": "tie", "target": "b", "source": "a"})
    session.save(path)
    tensors = load_file(str(path))
    metadata = safe_open(str(path), "pt").metadata()
    tensors["b"] = tensors["b"] + 1  # another tool edits one copy
    save_file(tensors, str(path), metadata=metadata)
    again = Session.open(path)
    assert again.document.tie_groups() == []
    assert torch.equal(again.document.tensor("b"), torch.full((3,), 2.0))
    assert "kept apart" in again.source["notes"][0]


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_reopening_with_arch_ties_again_through_the_cli(tmp_path, capsys, suffix):
    recipe = tmp_path / "tie.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [TIE]}))
    out = tmp_path / f"r{suffix}"
    code = main(["apply", str(recipe), "--arch", "torchvision:resnet18", "--output", str(out),
                 "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "ties:" in captured.out
    code = main(["inspect", str(out), "--arch", "torchvision:resnet18", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = {row["name"]: row for row in json.loads(captured.out)["tensors"]}
    conv1, conv2 = rows["layer1.0.conv1.weight"], rows["layer1.0.conv2.weight"]
    assert conv1["tie_group"] is not None
    assert conv1["tie_group"] == conv2["tie_group"]
    session = Session.open(out, arch="torchvision:resnet18")
    assert session.model.layer1[0].conv2.weight is session.model.layer1[0].conv1.weight


def _gpt2_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=20,
                                     n_positions=16, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(tmp_path / "hf")
    return transformers, model


def _from_pretrained(transformers, folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.GPT2LMHeadModel.from_pretrained(folder)


def test_hugging_face_ties_follow_transformers_and_user_ties_every_name(tmp_path):
    transformers, _ = _gpt2_folder(tmp_path)
    session = Session.open(tmp_path / "hf", arch="hf")
    session.apply({"op": "tie", "target": "transformer.h.0.ln_2.weight",
                   "source": "transformer.h.0.ln_1.weight"})
    session.apply({"op": "scale", "targets": ["transformer.h.0.ln_1.weight"], "value": 3.0})
    result = session.save(tmp_path / "out")
    assert result["ties"]["mode"] == "hf"
    assert result["ties"]["left_out"] == ["lm_head.weight"]  # transformers ties it itself
    names = set(load_file(str(tmp_path / "out" / "model.safetensors")))
    assert {"transformer.h.0.ln_1.weight", "transformer.h.0.ln_2.weight"} <= names
    loaded = _from_pretrained(transformers, tmp_path / "out")
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    assert torch.equal(loaded.transformer.h[0].ln_2.weight, session.model.transformer.h[0]
                       .ln_1.weight)
    again = Session.open(tmp_path / "out", arch="hf")
    assert again.model.transformer.h[0].ln_2.weight is again.model.transformer.h[0].ln_1.weight
    assert again.model.lm_head.weight is again.model.transformer.wte.weight


def test_a_bin_folder_converted_to_safetensors_leaves_out_what_transformers_ties(tmp_path):
    transformers, model = _gpt2_folder(tmp_path)
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "config.json").write_bytes((tmp_path / "hf" / "config.json").read_bytes())
    torch.save(model.state_dict(), bin_folder / "pytorch_model.bin")  # lm_head shares storage
    session = Session.open(bin_folder)
    assert session.document.tie_groups() == [["transformer.wte.weight", "lm_head.weight"]]
    result = session.save(tmp_path / "st", weights_format="safetensors")
    assert result["ties"]["mode"] == "hf"
    assert "lm_head.weight" not in load_file(str(tmp_path / "st" / "model.safetensors"))
    loaded = _from_pretrained(transformers, tmp_path / "st")
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    assert torch.equal(as_bytes(loaded.transformer.wte.weight),
                       as_bytes(model.transformer.wte.weight))
    every = session.save(tmp_path / "every", weights_format="safetensors", ties="every_name")
    assert every["ties"]["extra_bytes"] == 20 * 8 * 4
    assert "lm_head.weight" in load_file(str(tmp_path / "every" / "model.safetensors"))
    _from_pretrained(transformers, tmp_path / "every")
