"""LoRA adapters in peft's format: merged as peft's merge_and_unload merges them, extracted
so that PeftModel.from_pretrained loads them. Tiny models and adapters are built here with
peft itself."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from engine import EditError, Session
from engine.errors import FileError
from engine.lora.extract import extract, write_adapter
from tests.snapshots import assert_same, snapshot

peft = pytest.importorskip("peft")


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.fc1 = nn.Linear(8, 12)
        self.fc2 = nn.Linear(12, 6)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.embed(tokens))))


def quiet():
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("ignore")
    return context


def make_adapter(model: nn.Module, folder: Path, **config) -> dict[str, torch.Tensor]:
    """Save a random (non-zero) peft adapter for `model`; return merge_and_unload's state."""
    context = quiet()
    try:
        torch.manual_seed(3)
        lora = peft.LoraConfig(init_lora_weights=False, **config)
        wrapped = peft.get_peft_model(copy.deepcopy(model), lora)
        wrapped.save_pretrained(folder)
        merged = wrapped.merge_and_unload()
    finally:
        context.__exit__(None, None, None)
    return {name: tensor.detach().clone() for name, tensor in merged.state_dict().items()}


def relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    got, expected = got.detach().double(), expected.detach().double()
    scale = float(expected.abs().max()) or 1.0
    return float((got - expected).abs().max()) / scale


def gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=16, vocab_size=40,
                                      n_positions=16))


@pytest.mark.parametrize("extra", [{}, {"use_rslora": True},
                                   {"rank_pattern": {"fc2": 2}, "alpha_pattern": {"fc2": 5}}])
def test_merge_lora_equals_merge_and_unload_on_linear_and_embedding(tmp_path, extra):
    torch.manual_seed(0)
    model = Tiny()
    expected = make_adapter(model, tmp_path / "adapter", r=4, lora_alpha=8,
                            target_modules=["embed", "fc1", "fc2"], **extra)
    session = Session(model)
    before = snapshot(model)
    result = session.apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter")})
    assert sorted(result["merged"]) == ["embed.weight", "fc1.weight", "fc2.weight"]
    for name, tensor in model.state_dict().items():
        assert relative(tensor, expected[name]) <= 1e-6, name
    session.undo()
    assert_same(snapshot(model), before)


def test_merge_lora_in_checkpoint_mode_and_at_a_scale(tmp_path):
    torch.manual_seed(1)
    model = Tiny()
    expected = make_adapter(model, tmp_path / "adapter", r=2, lora_alpha=4,
                            target_modules=["fc1", "embed"])
    save_file(model.state_dict(), str(tmp_path / "base.safetensors"))
    session = Session.open(tmp_path / "base.safetensors")
    session.apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter")})
    state = session.state_dict()
    for name in ("fc1.weight", "embed.weight", "fc2.weight"):
        assert relative(state[name], expected[name]) <= 1e-6, name
    session.undo()
    half = Session.open(tmp_path / "base.safetensors")
    half.apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter"), "scale": 0.5})
    base = model.state_dict()["fc1.weight"]
    halfway = base + 0.5 * (expected["fc1.weight"] - base)
    assert torch.allclose(half.state_dict()["fc1.weight"], halfway, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_merge_lora_on_gpt2_conv1d_equals_peft(tmp_path, dtype):
    model = gpt2().to(dtype)
    expected = make_adapter(model, tmp_path / "adapter", r=4, lora_alpha=16,
                            target_modules=["c_attn", "c_proj"], fan_in_fan_out=True)
    session = Session(model)
    session.apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter")})
    for name, tensor in model.state_dict().items():
        if dtype == torch.float32:
            assert relative(tensor, expected[name]) <= 1e-6, name
        else:
            assert torch.equal(tensor, expected[name]), name


def test_a_mismatched_adapter_is_one_line_and_changes_nothing(tmp_path):
    torch.manual_seed(0)
    make_adapter(Tiny(), tmp_path / "adapter", r=4, lora_alpha=8, target_modules=["fc1"])
    other = nn.Sequential()
    other.add_module("fc1", nn.Linear(8, 5))
    session = Session(other)
    before = snapshot(other)
    with pytest.raises(EditError) as error:
        session.apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter")})
    message = str(error.value)
    assert "\n" not in message
    assert "'fc1' does not fit: the adapter's update is (12, 8), 'fc1.weight' is (5, 8)" in message
    assert_same(snapshot(other), before)
    with pytest.raises(EditError, match=r"document has no tensor 'fc1.weight'"):
        Session(nn.Sequential(nn.Linear(8, 12))).apply(
            {"op": "merge_lora", "adapter": str(tmp_path / "adapter")})


@pytest.mark.parametrize(("change", "message"), [
    ({"use_dora": True}, "use_dora: DoRA adapters are not merged here"),
    ({"peft_type": "IA3"}, "peft_type: 'IA3' adapters are not merged here"),
    ({"r": 0}, "r: expected a positive number"),
    ({"bias": "all"}, "bias: 'all' (trained biases) is not merged here"),
    ({"r": 3}, "the factors have rank 4, the config says r = 3"),
])
def test_bad_adapter_configs_are_one_line(tmp_path, change, message):
    torch.manual_seed(0)
    model = Tiny()
    make_adapter(model, tmp_path / "adapter", r=4, lora_alpha=8, target_modules=["fc1"])
    config_path = tmp_path / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config.update(change)
    config_path.write_text(json.dumps(config))
    with pytest.raises(EditError) as error:
        Session(model).apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter")})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_an_adapter_pickle_is_read_weights_only(tmp_path):
    torch.manual_seed(0)
    model = Tiny()
    make_adapter(model, tmp_path / "adapter", r=2, lora_alpha=2, target_modules=["fc1"])
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    (tmp_path / "adapter" / "adapter_model.safetensors").unlink()

    class Evil:
        def __reduce__(self):
            return (print, ("hacked",))

    torch.save({**tensors, "x": Evil()}, tmp_path / "adapter" / "adapter_model.bin")
    with pytest.raises(EditError, match=r"adapter_model.bin"):
        Session(model).apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter")})
    torch.save(tensors, tmp_path / "adapter" / "adapter_model.bin")
    Session(model).apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter")})


# ---------------------------------------------------------------------- extraction
def test_extract_recovers_an_exact_low_rank_delta_and_peft_loads_it(tmp_path):
    base_model = gpt2()
    base_model.save_pretrained(tmp_path / "base")
    tuned = copy.deepcopy(base_model)
    generator = torch.Generator().manual_seed(5)
    rank = 3
    with torch.no_grad():
        for block in tuned.transformer.h:
            weight = block.attn.c_attn.weight  # Conv1D: in x out
            weight += torch.randn(weight.shape[0], rank, generator=generator) @ \
                torch.randn(rank, weight.shape[1], generator=generator) * 0.1
        tuned.transformer.wte.weight += torch.randn(40, rank, generator=generator) @ \
            torch.randn(rank, 16, generator=generator) * 0.1
        tuned.transformer.h[0].mlp.c_fc.weight += 0.01 * torch.randn(
            tuned.transformer.h[0].mlp.c_fc.weight.shape, generator=generator)
    tuned.save_pretrained(tmp_path / "tuned")
    extraction = extract(str(tmp_path / "base"), str(tmp_path / "tuned"), rank)
    errors = {w.name: w.relative_error for w in extraction.weights}
    for block in range(2):
        assert errors[f"transformer.h.{block}.attn.c_attn.weight"] < 1e-4
    assert errors["transformer.wte.weight"] < 1e-4
    assert errors["transformer.h.0.mlp.c_fc.weight"] > 0.1  # full rank: rank 3 is far off
    kinds = {w.name: w.kind for w in extraction.weights}
    assert kinds["transformer.wte.weight"] == "embedding"
    assert kinds["transformer.h.0.attn.c_attn.weight"] == "conv1d"
    write_adapter(tmp_path / "adapter", extraction)
    context = quiet()
    try:
        loaded = peft.PeftModel.from_pretrained(gpt2(), tmp_path / "adapter")
        merged = loaded.merge_and_unload()
    finally:
        context.__exit__(None, None, None)
    tuned_state = tuned.state_dict()
    for name in ("transformer.h.0.attn.c_attn.weight", "transformer.h.1.attn.c_attn.weight",
                 "transformer.wte.weight"):
        assert relative(merged.state_dict()[name], tuned_state[name]) < 1e-4, name
    # Our own merge of the extracted adapter gives the tuned weights back too.
    session = Session.open(tmp_path / "base", arch="hf")
    session.apply({"op": "merge_lora", "adapter": str(tmp_path / "adapter")})
    assert relative(session.state_dict()["transformer.h.1.attn.c_attn.weight"],
                    tuned_state["transformer.h.1.attn.c_attn.weight"]) < 1e-4


def test_extract_from_plain_files_takes_linears_and_include(tmp_path):
    torch.manual_seed(0)
    base = Tiny()
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        tuned.fc1.weight += torch.randn(12, 2) @ torch.randn(2, 8)
        tuned.fc2.weight += torch.randn(6, 2) @ torch.randn(2, 12)
    save_file(base.state_dict(), str(tmp_path / "base.safetensors"))
    save_file(tuned.state_dict(), str(tmp_path / "tuned.safetensors"))
    extraction = extract(str(tmp_path / "base.safetensors"), str(tmp_path / "tuned.safetensors"),
                         2, include=["fc1.*"])
    assert [w.name for w in extraction.weights] == ["fc1.weight"]
    assert extraction.weights[0].relative_error < 1e-5
    write_adapter(tmp_path / "adapter", extraction)
    context = quiet()
    try:
        loaded = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "adapter")
        merged = loaded.merge_and_unload()
    finally:
        context.__exit__(None, None, None)
    assert relative(merged.fc1.weight, tuned.fc1.weight) < 1e-5
    assert torch.equal(merged.fc2.weight, base.fc2.weight)
    with pytest.raises(FileError, match="exists and is not an empty folder"):
        write_adapter(tmp_path / "adapter", extraction)
    with pytest.raises(FileError, match="no selected weight differs"):
        extract(str(tmp_path / "base.safetensors"), str(tmp_path / "base.safetensors"), 2)
