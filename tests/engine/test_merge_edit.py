"""The `merge` edit: on models and checkpoints, undo, refusals, reports, replay."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file

from engine import EditError, Session
from engine.edits.merge import Merge, undo_bytes
from engine.recipe import replay
from tests.models import MLP, SmallCNN, TiedLM, seeded
from tests.snapshots import assert_same, bits, snapshot


def variant_files(folder: Path, factory=MLP, count: int = 3) -> list[str]:
    """State dicts of `count` fine-tunes of one model (base first), as safetensors."""
    torch.manual_seed(0)
    base = factory().state_dict()
    paths = []
    for index in range(count):
        generator = torch.Generator().manual_seed(index)
        state = {name: (tensor + 0.1 * index * torch.randn(tensor.shape, generator=generator)
                        if tensor.is_floating_point() else tensor).contiguous()
                 for name, tensor in base.items()}
        path = folder / f"v{index}.safetensors"
        save_file(state, str(path))
        paths.append(str(path))
    return paths


def tensors_of(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def test_linear_merge_of_files_into_a_checkpoint_and_exact_undo(tmp_path):
    paths = variant_files(tmp_path)
    session = Session.open(paths[0])
    before = {name: bits(t) for name, t in tensors_of(paths[0]).items()}
    slots_before = dict(session.document.entries)
    report = session.apply({"op": "merge", "method": "linear", "models": [
        {"path": "self", "weight": 1}, {"path": paths[1], "weight": 1},
        {"path": paths[2], "weight": 2}]})
    states = [tensors_of(p) for p in paths]
    for name, tensor in session.state_dict().items():
        expected = (states[0][name] + states[1][name] + 2 * states[2][name]) / 4
        assert torch.allclose(tensor, expected, atol=1e-6)
    assert report["merged"] == 4
    assert report["method"] == "linear"
    change = report["tensors"][0]["relative_change"]
    assert set(change) == {"self", paths[1], paths[2]}
    assert all(v > 0 for v in change.values())
    assert session.history.nbytes == 0
    session.undo()
    # The very same Slots came back, still unread from the file: undo cost no memory.
    assert all(session.document.entries[n] is s for n, s in slots_before.items())
    assert not any(slot.loaded for slot in slots_before.values())
    assert session.state_dict().keys() == before.keys()
    for name, tensor in session.state_dict().items():
        assert torch.equal(bits(tensor), before[name])
    session.redo()
    assert torch.allclose(session.state_dict()["fc1.weight"],
                          (states[0]["fc1.weight"] + states[1]["fc1.weight"]
                           + 2 * states[2]["fc1.weight"]) / 4, atol=1e-6)


def test_lazy_checkpoint_merge_keeps_no_undo_bytes(tmp_path):
    paths = variant_files(tmp_path)
    session = Session.open(paths[0])
    names = list(session.document.entries)
    assert undo_bytes(session.document, names) == 0
    session.apply({"op": "merge", "method": "task_arithmetic", "base": paths[0],
                   "models": [{"path": paths[1]}, {"path": paths[2], "weight": 0.5}]})
    assert session.history.nbytes == 0


def test_merge_in_model_mode_keeps_parameter_objects_and_undoes_exactly(tmp_path):
    paths = variant_files(tmp_path)
    model = seeded(MLP)
    session = Session(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = snapshot(model)
    session.apply({"op": "merge", "method": "ties", "base": "self", "models": [
        {"path": paths[1], "weight": 0.6, "density": 0.5},
        {"path": paths[2], "weight": 0.4, "density": 0.5}]})
    after = snapshot(model)
    assert all(after.tensors[n][1] == before.tensors[n][1] for n in before.tensors)
    assert not torch.equal(after.tensors["fc1.weight"][0], before.tensors["fc1.weight"][0])
    assert optimizer.param_groups[0]["params"][0] is model.fc1.weight
    assert session.history.nbytes == sum(p.numel() * 4 for p in model.parameters())
    session.undo()
    assert_same(snapshot(model), before)


def test_tied_tensors_are_merged_once(tmp_path):
    files = variant_files(tmp_path, TiedLM, 2)
    model = seeded(TiedLM)
    session = Session(model)
    report = session.apply({"op": "merge", "method": "linear", "models": [
        {"path": "self"}, {"path": files[1]}], "skip_mismatched": True})
    assert model.lm_head.weight is model.embed.weight
    merged = {item["name"] for item in report["tensors"]}
    assert len(merged & {"embed.weight", "lm_head.weight"}) == 1


def test_include_exclude_select_the_tensors(tmp_path):
    paths = variant_files(tmp_path)
    session = Session.open(paths[0])
    original = {n: t.clone() for n, t in session.state_dict().items()}
    report = session.apply({"op": "merge", "method": "passthrough", "models": [paths[2]],
                            "include": ["fc1.*"], "exclude": ["*.bias"]})
    assert [item["name"] for item in report["tensors"]] == ["fc1.weight"]
    state = session.state_dict()
    assert torch.equal(state["fc1.weight"], tensors_of(paths[2])["fc1.weight"])
    for name in ("fc1.bias", "fc2.weight", "fc2.bias"):
        assert torch.equal(state[name], original[name])


def test_mismatches_are_one_line_naming_the_tensor_or_skipped_and_reported(tmp_path):
    paths = variant_files(tmp_path)
    odd = tensors_of(paths[1])
    odd["fc2.weight"] = torch.zeros(3, 8)
    del odd["fc2.bias"]
    save_file(odd, str(tmp_path / "odd.safetensors"))
    session = Session.open(paths[0])
    before = {n: bits(t).clone() for n, t in session.state_dict().items()}
    spec = {"op": "merge", "method": "linear",
            "models": ["self", str(tmp_path / "odd.safetensors")]}
    with pytest.raises(EditError) as error:
        session.apply(spec)
    message = str(error.value)
    assert "\n" not in message
    assert "'fc2.bias' is missing from" in message
    assert "odd" in message
    wrong_shape = {**tensors_of(paths[1]), "fc2.weight": torch.zeros(3, 8)}
    save_file(wrong_shape, str(tmp_path / "shape.safetensors"))
    with pytest.raises(EditError) as error:
        session.apply({**spec, "models": ["self", str(tmp_path / "shape.safetensors")]})
    assert "'fc2.weight' is 4x8 in self but 3x8 in" in str(error.value)
    assert {n: bits(t) for n, t in session.state_dict().items()}.keys() == before.keys()
    assert all(torch.equal(bits(t), before[n]) for n, t in session.state_dict().items())
    assert not session.can_undo
    report = session.apply({**spec, "skip_mismatched": True})
    skipped = dict(report["skipped"])
    assert set(skipped) == {"fc2.weight", "fc2.bias"}
    assert "missing from" in skipped["fc2.bias"]
    assert report["merged"] == 2


def test_dtype_mismatch_needs_a_dtype(tmp_path):
    paths = variant_files(tmp_path)
    half = {n: t.half() for n, t in tensors_of(paths[1]).items()}
    save_file(half, str(tmp_path / "half.safetensors"))
    session = Session.open(paths[0])
    spec = {"op": "merge", "method": "linear",
            "models": ["self", str(tmp_path / "half.safetensors")]}
    with pytest.raises(EditError, match=r"float32 in self but float16 in .*give a dtype"):
        session.apply(spec)
    session.apply({**spec, "dtype": "float32"})
    assert session.state_dict()["fc1.weight"].dtype == torch.float32


@pytest.mark.parametrize(("spec", "message"), [
    ({"method": "average", "models": ["a"]}, "merge.method: expected one of linear"),
    ({"method": "ties", "models": ["self"]}, "merge.base: ties needs a base model"),
    ({"method": "slerp", "base": "self", "models": ["x"]}, "merge.parameters.t: required by slerp"),
    ({"method": "slerp", "base": "self", "models": ["x", "y"], "parameters": {"t": 0.5}},
     "merge.models: slerp takes exactly one model besides the base"),
    ({"method": "passthrough", "base": "self", "models": ["x"]},
     "merge.base: passthrough takes one model and no base"),
    ({"method": "linear", "models": [{"path": "x", "weight": "big"}]},
     "merge.models[0].weight: expected a number, got text"),
    ({"method": "linear", "models": [{"path": "x", "density": 0.5}]},
     "merge.models[0].density: not a parameter of linear per model"),
    ({"method": "ties", "base": "self", "models": [{"path": "x", "density": 1.5}]},
     "merge.models[0].density: must be between 0 and 1"),
    ({"method": "ties", "base": "self", "models": ["x"], "parameters": {"t": 0.5}},
     "merge.parameters.t: not a parameter of ties"),
    ({"method": "linear", "models": ["x", "x"]}, "merge.models[1].path: 'x' is listed twice"),
    ({"method": "linear", "models": []}, "merge.models: expected a list of models"),
    ({"method": "linear", "models": ["x"], "dtype": "int8"}, "merge.dtype: expected a floating"),
    ({"method": "linear", "models": ["x"], "wat": 1}, "merge.wat: unknown field"),
])
def test_bad_specs_are_refused_when_built(spec, message):
    with pytest.raises(EditError) as error:
        Merge({"op": "merge", **spec})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_input_file_is_one_line(tmp_path):
    session = Session.open(variant_files(tmp_path)[0])
    with pytest.raises(EditError, match=r"^merge.models: .*nope.safetensors: no such file"):
        session.apply({"op": "merge", "method": "linear",
                       "models": ["self", str(tmp_path / "nope.safetensors")]})


def test_dare_seed_is_recorded_and_the_recipe_replays_exactly(tmp_path):
    paths = variant_files(tmp_path)
    session = Session.open(paths[0])
    session.apply({"op": "merge", "method": "dare_ties", "base": "self", "models": [
        {"path": paths[1], "density": 0.5}, {"path": paths[2], "density": 0.3}]})
    recipe = session.recipe()
    assert isinstance(recipe[0]["seed"], int)
    again = Session.open(paths[0])
    replay(again, recipe)
    for name, tensor in session.state_dict().items():
        assert torch.equal(bits(tensor), bits(again.state_dict()[name]))
    # The draws are per tensor: merging only one of them draws the same mask for it.
    only = Session.open(paths[0])
    only.apply({**recipe[0], "include": ["fc1.weight"]})
    assert torch.equal(only.state_dict()["fc1.weight"], session.state_dict()["fc1.weight"])


def test_prepared_values_are_applied_and_not_kept(tmp_path):
    paths = variant_files(tmp_path)
    session = Session.open(paths[0])
    direct = Session.open(paths[0])
    spec = {"op": "merge", "method": "ties", "base": "self", "seed": 3, "models": [
        {"path": paths[1], "density": 0.5}, {"path": paths[2], "density": 0.5}]}
    direct.apply(spec)
    edit = Merge(spec)
    edit.prepare(session.document)
    session.apply(edit)
    for name, tensor in direct.state_dict().items():
        assert torch.equal(tensor, session.state_dict()[name])
    assert edit._prepared is None  # the history's step holds no merged values


def test_a_merge_over_the_history_budget_applies_but_cannot_be_undone(tmp_path):
    paths = variant_files(tmp_path)
    model = seeded(MLP)
    session = Session(model, history_budget=100)
    notices = []
    session.events.notice.connect(notices.append)
    session.apply({"op": "merge", "method": "linear", "models": ["self", paths[1]]})
    assert not session.can_undo
    assert session.recipe()[0]["op"] == "merge"
    assert notices
    assert "can no longer be undone" in notices[0]


def test_integer_tensors_are_kept(tmp_path):
    files = variant_files(tmp_path, SmallCNN, 2)
    model = seeded(SmallCNN)
    session = Session(model)
    counter = model.features[1].num_batches_tracked.clone()
    report = session.apply({"op": "merge", "method": "linear",
                            "models": ["self", {"path": files[1], "weight": 3}]})
    assert "features.1.num_batches_tracked" in report["kept"]
    assert torch.equal(model.features[1].num_batches_tracked, counter)


@given(st.lists(st.floats(0.05, 3.0), min_size=2, max_size=3), st.booleans())
def test_undo_restores_bits_for_any_weights(tmp_path_factory, weights, normalize):
    folder = tmp_path_factory.mktemp("v")
    paths = variant_files(folder, count=len(weights))
    model = seeded(MLP)
    session = Session(model)
    before = snapshot(model)
    models = [{"path": "self", "weight": weights[0]}] + [
        {"path": p, "weight": w} for p, w in zip(paths[1:], weights[1:], strict=True)]
    session.apply({"op": "merge", "method": "linear", "models": models,
                   "parameters": {"normalize": normalize}})
    session.undo()
    assert_same(snapshot(model), before)
