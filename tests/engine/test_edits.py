"""Every edit: apply -> effect -> undo (exact: bits, objects, flags, modes) -> redo (exact)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine import EditError, Session
from tests.models import MLP, SmallCNN, TiedLM, seeded
from tests.snapshots import assert_same, bits, snapshot


def round_trip(session: Session, spec: dict):
    """Apply, then check undo and redo restore exactly; return the result."""
    model = session.model
    before = snapshot(model)
    result = session.apply(spec)
    after = snapshot(model)
    session.undo()
    assert_same(before, snapshot(model))
    session.redo()
    assert_same(after, snapshot(model))
    return result


def test_set_value_region_changes_only_the_region():
    session = Session(seeded(MLP))
    weight = session.model.fc1.weight
    old = weight.detach().clone()
    round_trip(session, {"op": "set", "target": "fc1.weight", "index": "0, :3", "value": 2.5})
    assert torch.all(weight[0, :3] == 2.5)
    assert torch.equal(weight[1:], old[1:])
    assert torch.equal(weight[0, 3:], old[0, 3:])


def test_set_nested_list_broadcasts():
    session = Session(seeded(MLP))
    round_trip(session, {"op": "set", "target": "fc1.weight", "index": ":, 0",
                         "value": [1, 2, 3, 4, 5, 6, 7, 8]})
    assert session.model.fc1.weight[:, 0].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]


def test_set_expr_prunes_small_weights():
    session = Session(seeded(MLP))
    weight = session.model.fc1.weight
    expected = weight.detach() * (weight.detach().abs() >= 0.2)
    round_trip(session, {"op": "set", "target": "fc1.weight", "expr": "x * (x.abs() >= 0.2)"})
    assert torch.equal(weight.detach(), expected)


def test_set_expr_with_random_is_reproducible_from_the_recorded_seed():
    first = Session(seeded(MLP))
    first.apply({"op": "set", "target": "fc2.bias", "expr": "randn_like(x) * 0.1"})
    seed = first.recipe()[0]["seed"]
    second = Session(seeded(MLP))
    second.apply(first.recipe()[0])
    assert torch.equal(first.model.fc2.bias, second.model.fc2.bias)
    expected = torch.randn(4, generator=torch.Generator().manual_seed(seed)) * 0.1
    assert torch.equal(first.model.fc2.bias.detach(), expected)


def test_set_from_copies_another_tensor():
    session = Session(seeded(MLP))
    round_trip(session, {"op": "set", "target": "fc2.weight", "index": "0", "from": "fc1.bias"})
    assert torch.equal(session.model.fc2.weight[0], session.model.fc1.bias)


def test_scale_and_add():
    session = Session(seeded(MLP))
    old = session.model.fc1.weight.detach().clone()
    round_trip(session, {"op": "scale", "targets": ["fc1.weight"], "value": 0.5})
    assert torch.equal(session.model.fc1.weight.detach(), old * 0.5)
    round_trip(session, {"op": "add", "targets": "fc1", "value": 1.0})
    assert torch.equal(session.model.fc1.weight.detach(), old * 0.5 + 1.0)


@pytest.mark.parametrize(("method", "args"), [
    ("uniform", {"a": -0.1, "b": 0.1}), ("normal", {"std": 0.02}),
    ("trunc_normal", {"std": 0.02}), ("xavier_uniform", {}), ("xavier_normal", {"gain": 2.0}),
    ("kaiming_uniform", {"a": 0.0}), ("kaiming_normal", {"mode": "fan_out",
                                                         "nonlinearity": "relu"}),
    ("orthogonal", {}), ("sparse", {"sparsity": 0.5}),
])
def test_seeded_init_matches_torch_nn_init_with_one_generator(method, args):
    session = Session(seeded(SmallCNN))
    expected_model = seeded(SmallCNN)
    types = ["Linear"] if method == "sparse" else ["Conv2d", "Linear"]  # sparse_: 2-D only
    round_trip(session, {"op": "init", "types": types, "param": "weight",
                         "method": method, "args": args, "seed": 1234})
    generator = torch.Generator().manual_seed(1234)
    initializer = getattr(nn.init, f"{method}_")
    owners = {f"{path}.weight" for path, module in expected_model.named_modules()
              if type(module).__name__ in types}
    torch.manual_seed(1234)  # sparse_ also draws zero positions from the global generator
    with torch.no_grad():
        for name, parameter in expected_model.named_parameters():
            if name in owners:
                initializer(parameter, **args, generator=generator)
    for (name, got), (_, want) in zip(session.model.named_parameters(),
                                      expected_model.named_parameters(), strict=True):
        assert torch.equal(bits(got), bits(want)), name


@pytest.mark.parametrize(("method", "args", "check"), [
    ("constant", {"val": 0.3}, lambda t: bool(torch.all(t == 0.3))),
    ("ones", {}, lambda t: bool(torch.all(t == 1))),
    ("zeros", {}, lambda t: bool(torch.all(t == 0))),
    ("eye", {}, lambda t: torch.equal(t, torch.eye(*t.shape))),
])
def test_deterministic_initializers(method, args, check):
    session = Session(seeded(MLP))
    round_trip(session, {"op": "init", "targets": ["fc1.weight"], "method": method,
                         "args": args})
    assert check(session.model.fc1.weight.detach())
    assert "seed" not in session.recipe()[0]


def test_dirac_on_conv_weights_and_glob_targets():
    session = Session(seeded(SmallCNN))
    round_trip(session, {"op": "init", "targets": ["features.3.weight"], "method": "dirac"})
    weight = session.model.features[3].weight.detach()
    assert weight.sum().item() == 4.0  # dirac: one 1 per output channel up to min(out, in)


def test_reset_uses_modules_own_reset_parameters_under_one_seed():
    session = Session(seeded(SmallCNN))
    round_trip(session, {"op": "init", "targets": ["features"], "method": "reset", "seed": 7})
    expected = seeded(SmallCNN)
    torch.manual_seed(7)
    for module in expected.features.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    for name, tensor in expected.features.state_dict().items():
        assert torch.equal(tensor, session.model.features.state_dict()[name]), name


def test_freeze_with_except_and_bn_eval_then_unfreeze():
    session = Session(seeded(SmallCNN))
    model = session.model
    round_trip(session, {"op": "freeze", "targets": ["features"], "except": ["features.4.*"],
                         "bn_eval": True})
    assert not model.features[0].weight.requires_grad
    assert model.features[4].weight.requires_grad  # excepted
    assert not model.features[1].training  # BatchNorm kept in eval
    assert model.features[4].training  # excepted BatchNorm untouched
    assert model.classifier[2].weight.requires_grad
    from engine.modes import set_train_mode

    set_train_mode(model, True)
    assert not model.features[1].training, "marked BatchNorm stays in eval after train()"
    round_trip(session, {"op": "unfreeze", "targets": ["features"], "bn_eval": True})
    assert model.features[0].weight.requires_grad
    assert model.features[1].training


def test_tie_parameters_makes_one_object_and_untie_copies():
    model = seeded(lambda: nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 5)))
    session = Session(model)
    old_target = model[1].weight
    round_trip(session, {"op": "tie", "target": "1.weight", "source": "0.weight"})
    assert model[1].weight is model[0].weight
    assert session.document.tie_groups() == [["0.weight", "1.weight"]]
    session.undo()
    assert model[1].weight is old_target
    session.redo()
    round_trip(session, {"op": "untie", "target": "1.weight"})
    assert model[1].weight is not model[0].weight
    assert torch.equal(model[1].weight, model[0].weight)


def test_tie_and_untie_on_a_language_model():
    torch.manual_seed(0)
    model = TiedLM()
    session = Session(model)
    assert session.document.tie_groups() == [["embed.weight", "lm_head.weight"]]
    round_trip(session, {"op": "untie", "target": "lm_head.weight"})
    assert model.lm_head.weight is not model.embed.weight
    assert torch.equal(model.lm_head.weight, model.embed.weight)
    assert session.document.tie_groups() == []
    round_trip(session, {"op": "tie", "target": "lm_head.weight", "source": "embed.weight"})
    assert model.lm_head.weight is model.embed.weight


def test_tie_modules_shares_one_layer():
    session = Session(seeded(lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))))
    round_trip(session, {"op": "tie", "target": "2", "source": "0"})
    assert session.model[2] is session.model[0]
    assert session.document.module_tie_groups() == [["0", "2"]]
    round_trip(session, {"op": "untie", "target": "2"})
    assert session.model[2] is not session.model[0]


def test_replace_infers_sizes_and_keeps_dtype():
    model = seeded(MLP).to(torch.float64)
    session = Session(model)
    round_trip(session, {"op": "replace", "target": "fc2", "module": {"type": "Linear",
                                                                     "out_features": 3}})
    assert model.fc2.in_features == 8
    assert model.fc2.out_features == 3
    assert model.fc2.weight.dtype == torch.float64
    assert session.recipe()[0]["module"]["in_features"] == 8


def test_replace_with_sequential_chains_sizes():
    session = Session(seeded(MLP))
    round_trip(session, {"op": "replace", "target": "fc2", "module": {
        "type": "Sequential", "layers": [{"type": "Linear", "out_features": 5},
                                         {"type": "BatchNorm1d"}, {"type": "GELU"},
                                         {"type": "Linear", "out_features": 2}]}})
    head = session.model.fc2
    assert head[0].in_features == 8
    assert head[1].num_features == 5
    assert head[3].in_features == 5


@pytest.mark.parametrize(("factory", "head"), [
    (lambda: __import__("torchvision").models.resnet18(), "fc"),
    (lambda: __import__("torchvision").models.mobilenet_v3_small(), "classifier.3"),
    (lambda: __import__("torchvision").models.squeezenet1_1(), "classifier.1"),
    (SmallCNN, "classifier.2"),
])
def test_replace_head_finds_the_classifier(factory, head):
    session = Session(seeded(factory))
    result = round_trip(session, {"op": "replace_head", "num_classes": 3})
    assert result["target"] == head
    model = session.model
    model.eval()
    size = 64 if factory is not SmallCNN else 8
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 3)


def test_replace_head_mlp_with_dropout():
    session = Session(seeded(SmallCNN))
    round_trip(session, {"op": "replace_head", "num_classes": 2, "hidden": [16],
                         "dropout": 0.3})
    head = session.model.classifier[2]
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Dropout", "Linear"]


def test_load_partial_with_prefix_rename_and_report(tmp_path):
    source = seeded(SmallCNN, seed=1)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    state["module.classifier.2.weight"] = torch.zeros(9, 6)  # mismatched shape
    state["module.extra"] = torch.zeros(1)
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    session = Session(seeded(SmallCNN))
    with pytest.raises(EditError, match="skip_mismatched"):
        session.apply({"op": "load", "path": str(path), "strip_prefix": "module."})
    report = round_trip(session, {"op": "load", "path": str(path), "strip_prefix": "module.",
                                  "skip_mismatched": True})
    assert report["mismatched"][0]["name"] == "classifier.2.weight"
    assert report["mismatched"][0]["file_shape"] == [9, 6]
    assert report["unexpected"] == ["extra"]
    assert torch.equal(session.model.features[0].weight, source.features[0].weight)
    assert not torch.equal(session.model.classifier[2].weight, source.classifier[2].weight)


def test_load_strict_refuses_and_changes_nothing(tmp_path):
    path = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file({"fc1.weight": torch.ones(8, 6)}, str(path))
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    with pytest.raises(EditError, match="missing"):
        session.apply({"op": "load", "path": str(path), "strict": True})
    assert_same(before, snapshot(session.model))
    report = session.apply({"op": "load", "path": str(path)})
    assert report["loaded"] == ["fc1.weight"]
    assert "fc2.weight" in report["missing"]


def test_group_is_one_step_and_reverts_if_a_child_fails():
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    with pytest.raises(EditError, match=r"edits\[1\]"):
        session.apply({"op": "group", "edits": [
            {"op": "init", "targets": ["fc1.weight"], "method": "zeros"},
            {"op": "init", "targets": ["nope"], "method": "zeros"}]})
    assert_same(before, snapshot(session.model))
    assert session.history.labels == []
    round_trip(session, {"op": "group", "label": "Two", "edits": [
        {"op": "init", "targets": ["fc1.weight"], "method": "zeros"},
        {"op": "freeze", "targets": ["fc2"]}]})
    assert session.history.labels == ["Two"]


def test_session_group_context_manager():
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    with session.group("Prepare"):
        session.apply({"op": "freeze", "targets": ["fc1"]})
        session.apply({"op": "replace_head", "num_classes": 2, "target": "fc2"})
    assert session.history.labels == ["Prepare"]
    assert session.recipe()[0]["op"] == "group"
    session.undo()
    assert_same(before, snapshot(session.model))
    with pytest.raises(RuntimeError), session.group("Broken"):  # noqa: PT012
        session.apply({"op": "freeze", "targets": ["fc1"]})
        raise RuntimeError("stop")
    assert_same(before, snapshot(session.model))


# ------------------------------------------------------------------ bad input
BAD_EDITS = [
    ({"op": "nope"}, "op: unknown edit 'nope'"),
    ({"targets": ["x"]}, "op: missing"),
    ({"op": "set", "target": "fc1.weight"}, "exactly one of"),
    ({"op": "set", "target": "fc9.weight", "value": 1}, "set.target"),
    ({"op": "set", "target": "fc1", "value": 1}, "is a module"),
    ({"op": "set", "target": "fc1.weight", "value": [1, 2, 3]}, "does not fit"),
    ({"op": "set", "target": "fc1.weight", "index": "9", "value": 1}, "out of range"),
    ({"op": "set", "target": "fc1.weight", "index": "0, 0, 0", "value": 1}, "dims"),
    ({"op": "set", "target": "fc1.weight", "index": "import os", "value": 1}, "set.index"),
    ({"op": "set", "target": "fc1.weight", "expr": "__import__('os')"}, "set.expr"),
    ({"op": "set", "target": "fc1.weight", "expr": "x.__class__"}, "set.expr"),
    ({"op": "set", "target": "fc1.weight", "expr": "y + 1"}, "the name 'y'"),
    ({"op": "set", "target": "fc1.weight", "expr": "[i for i in x]"}, "comprehension"),
    ({"op": "set", "target": "fc1.weight", "expr": "9 ** 9 ** 9"}, "set.expr"),
    ({"op": "set", "target": "fc1.weight", "expr": "x.mean(dim=5)"}, "set.expr"),
    ({"op": "set", "target": "fc1.weight", "value": "a"}, "set.value"),
    ({"op": "set", "target": "fc1.weight", "value": 1, "colour": 2}, "set.colour"),
    ({"op": "init", "targets": ["fc1"], "method": "magic"}, "init.method"),
    ({"op": "init", "targets": ["fc1.bias"], "method": "kaiming_normal"}, "2 or more dims"),
    ({"op": "init", "targets": ["fc1"], "method": "normal", "args": {"sd": 1}}, "init.args.sd"),
    ({"op": "init", "targets": ["fc1"], "method": "sparse"}, "init.args.sparsity"),
    ({"op": "init", "types": ["Conv2d"], "method": "zeros"}, "init.types"),
    ({"op": "init", "targets": ["f*x"], "method": "zeros"}, "matches no tensor"),
    ({"op": "init", "targets": ["fc1"], "method": "zeros", "seed": -1}, "init.seed"),
    ({"op": "freeze", "targets": ["fc1"], "except": ["fc1"]}, "excludes every"),
    ({"op": "freeze", "targets": 3}, "freeze.targets"),
    ({"op": "tie", "target": "fc1.weight", "source": "fc2.weight"}, "shape"),
    ({"op": "untie", "target": "fc1.weight"}, "not tied"),
    ({"op": "replace", "target": "", "module": {"type": "Linear"}}, "root"),
    ({"op": "replace", "target": "fc2", "module": {"type": "Transformer9"}}, "unknown layer"),
    ({"op": "replace", "target": "fc2", "module": {"type": "Linear", "size": 3}},
     "replace.module.size"),
    ({"op": "replace", "target": "fc2", "module": {"type": "Linear"}}, "out_features"),
    ({"op": "replace_head", "num_classes": 0}, "replace_head.num_classes"),
    ({"op": "replace_head", "num_classes": 3, "dropout": 2}, "replace_head.dropout"),
    ({"op": "load", "path": "/nonexistent/w.pt"}, "no such file"),
    ({"op": "load", "path": "x.pt", "rename": [["(", "x"]]}, "load.rename"),
    ({"op": "scale", "targets": ["fc1"], "value": float("nan")}, "scale.value"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_EDITS)
def test_bad_edits_are_one_line_errors_and_change_nothing(spec, message):
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    with pytest.raises(EditError) as info:
        session.apply(spec)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert_same(before, snapshot(session.model))
    assert session.history.labels == []


def test_scale_refuses_integer_buffers():
    session = Session(seeded(SmallCNN))
    with pytest.raises(EditError, match="int64"):
        session.apply({"op": "scale", "targets": ["features.1.num_batches_tracked"],
                       "value": 2.0})


def test_edit_that_fails_midway_rolls_back_earlier_tensors():
    # orthogonal_ raises for half tensors on some builds; force a midway failure
    # with an expression that fails only at run time instead.
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    with pytest.raises(EditError):
        session.apply({"op": "group", "edits": [
            {"op": "scale", "targets": ["fc1.weight"], "value": 3.0},
            {"op": "set", "target": "fc2.weight", "expr": "x @ x"}]})
    assert_same(before, snapshot(session.model))


def test_undo_keeps_optimizer_working():
    session = Session(seeded(MLP))
    model = session.model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    session.apply({"op": "replace_head", "num_classes": 4, "target": "fc2"})
    session.undo()
    loss = model(torch.randn(3, 6)).sum()
    loss.backward()
    before = model.fc2.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, model.fc2.weight.detach()), "optimizer still holds fc2"
