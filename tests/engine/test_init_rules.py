"""The per-type `init` rules are bit-identical to the tutorials' pattern:
`torch.manual_seed(s); model.apply(weight_init)` with an isinstance-dispatching `weight_init`."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from engine import Session
from engine.errors import EditError
from tests.models import SmallCNN, TiedLM, seeded
from tests.snapshots import assert_same, snapshot

RESNET_RULES = [
    {"types": ["Conv2d"], "param": "weight", "method": "kaiming_normal",
     "args": {"mode": "fan_out", "nonlinearity": "relu"}},
    {"types": ["BatchNorm2d"], "param": "weight", "method": "constant", "args": {"val": 1}},
    {"types": ["BatchNorm2d"], "param": "bias", "method": "zeros"},
    {"types": ["Linear"], "param": "weight", "method": "normal", "args": {"std": 0.01}},
    {"types": ["Linear"], "param": "bias", "method": "zeros"},
]


def tutorial_weight_init(m: nn.Module) -> None:
    """The literal code of the PyTorch tutorials (torchvision's own resnet init)."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.constant_(m.weight, 1)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.01)
        nn.init.zeros_(m.bias)


def assert_bits_equal(left: nn.Module, right: nn.Module) -> None:
    a, b = left.state_dict(), right.state_dict()
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("factory", [lambda: torchvision.models.resnet18(), SmallCNN],
                         ids=["resnet18", "small_cnn"])
@pytest.mark.parametrize("seed", [0, 12345])
def test_rules_equal_the_tutorial_code(factory, seed):
    model = seeded(factory)
    expected = copy.deepcopy(model)
    torch.manual_seed(seed)
    expected.apply(tutorial_weight_init)
    before = snapshot(model)
    session = Session(model)
    state = torch.random.get_rng_state()
    names = session.apply({"op": "init", "seed": seed, "rules": RESNET_RULES})
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's generator is kept
    assert_bits_equal(model, expected)
    assert "fc.weight" in names or "classifier.2.weight" in names
    session.undo()
    assert_same(snapshot(model), before)


def test_rules_without_a_seed_record_one_and_replay():
    model = seeded(SmallCNN)
    session = Session(model)
    session.apply({"op": "init", "rules": RESNET_RULES})
    seed = session.recipe()[0]["seed"]
    expected = seeded(SmallCNN)
    torch.manual_seed(seed)
    expected.apply(tutorial_weight_init)
    assert_bits_equal(model, expected)


def test_a_rule_target_runs_apply_on_a_submodule():
    model = seeded(SmallCNN)
    expected = copy.deepcopy(model)
    torch.manual_seed(3)
    expected.features.apply(tutorial_weight_init)
    # The Linear rules match nothing under `features`, as the code's Linear branch.
    Session(model).apply({"op": "init", "seed": 3, "target": "features",
                          "rules": RESNET_RULES})
    assert_bits_equal(model, expected)


def test_reset_rule_and_tied_weights():
    model = seeded(TiedLM)
    expected = copy.deepcopy(model)

    def weight_init(m: nn.Module) -> None:
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.5)
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.1, 0.1)
        if isinstance(m, nn.LayerNorm):
            m.reset_parameters()

    torch.manual_seed(9)
    expected.apply(weight_init)
    Session(model).apply({"op": "init", "seed": 9, "rules": [
        {"types": ["Embedding"], "param": "weight", "method": "normal", "args": {"std": 0.5}},
        {"types": ["Linear"], "param": "weight", "method": "uniform",
         "args": {"a": -0.1, "b": 0.1}},
        {"types": ["LayerNorm"], "method": "reset"}]})
    assert_bits_equal(model, expected)
    assert model.lm_head.weight is model.embed.weight


@pytest.mark.parametrize(("rules", "message"), [
    ([], r"init\.rules: expected a list"),
    ([{"types": ["Conv2d"], "param": "weight"}], r"init\.rules\[0\]\.method: required"),
    ([{"types": ["Conv2d"], "param": "weight", "method": "kaiming", "args": {}}],
     r"init\.rules\[0\]\.method: unknown initializer 'kaiming'"),
    ([{"types": ["Conv2d"], "param": "weight", "method": "normal", "args": {"sd": 1}}],
     r"init\.rules\[0\]\.args\.sd: 'normal' takes mean, std"),
    ([{"types": "Linear", "param": "weight", "method": "zeros", "colour": 1}],
     r"init\.rules\[0\]\.colour: unknown field"),
    ([{"types": ["Linear"], "param": "weight", "method": "reset"}],
     r"init\.rules\[0\]\.param: 'reset'"),
])
def test_bad_rules_are_refused_when_built(rules, message):
    with pytest.raises(EditError, match=message):
        Session(seeded(SmallCNN)).apply({"op": "init", "seed": 0, "rules": rules})


@pytest.mark.parametrize(("rules", "message"), [
    ([{"types": ["LSTM"], "param": "weight", "method": "zeros"}],
     r"init\.rules: no module of the model is of a type the rules name"),
    ([{"types": ["Linear"], "param": "weight", "method": "zeros"},
      {"types": ["Conv2D"], "param": "weight", "method": "zeros"}],
     r"init\.rules\[1\]\.types: 'Conv2D' is no torch\.nn module class and no class of the "
     r"model's modules"),
    ([{"types": ["BatchNorm2d"], "param": "weight", "method": "zeros"},
      {"types": ["Linear"], "param": "bias", "method": "kaiming_normal"}],
     r"init\.rules\[1\]\.method: 'kaiming_normal' needs a tensor with 2 or more dims; "
     r"'classifier\.2\.bias' has 1"),
    ([{"types": ["Conv2d"], "param": "gamma", "method": "zeros"}],
     r"init\.rules\[0\]\.param: Conv2d at 'features\.0' has no tensor 'gamma'"),
])
def test_rules_that_do_not_fit_change_nothing(rules, message):
    model = seeded(SmallCNN)
    before = snapshot(model)
    session = Session(model)
    with pytest.raises(EditError, match=message):
        session.apply({"op": "init", "seed": 0, "rules": rules})
    assert_same(snapshot(model), before)
    assert not session.can_undo


# ----------------------------------------------------------------------------- property
class ParentLinear(nn.Linear):
    """A Linear with a Linear inside: `apply` visits the child first, `named_parameters`
    lists the parent's own weight first, so only the right order gives the same bits."""

    def __init__(self) -> None:
        super().__init__(4, 4)
        self.inner = nn.Linear(4, 4)


CLASSES = {"ParentLinear": ParentLinear}

LAYER_TYPES = {
    "ParentLinear": ParentLinear,
    "Linear": lambda: nn.Linear(4, 4),
    "LinearNoBias": lambda: nn.Linear(4, 4, bias=False),
    "Conv2d": lambda: nn.Conv2d(4, 4, 3),
    "BatchNorm2d": lambda: nn.BatchNorm2d(4),
    "LayerNorm": lambda: nn.LayerNorm(4),
    "Embedding": lambda: nn.Embedding(6, 4),
}
#: method -> (keyword arguments, minimum dims)
METHODS = {
    "normal": ({"mean": 0.1, "std": 0.3}, 0),
    "uniform": ({"a": -0.2, "b": 0.5}, 0),
    "trunc_normal": ({"std": 0.2}, 0),
    "constant": ({"val": 0.7}, 0),
    "zeros": ({}, 0),
    "xavier_uniform": ({}, 2),
    "kaiming_normal": ({"mode": "fan_out", "nonlinearity": "relu"}, 2),
    "orthogonal": ({}, 2),
}


@st.composite
def models_and_rules(draw):
    kinds = draw(st.lists(st.sampled_from(sorted(LAYER_TYPES)), min_size=1, max_size=5))
    nested = draw(st.booleans())
    layers = [LAYER_TYPES[kind]() for kind in kinds]
    if nested and len(layers) > 1:
        layers = [nn.Sequential(*layers[:2]), *layers[2:]]
    seed = draw(st.integers(0, 2**31))
    present = {type(m).__name__ for layer in layers for m in layer.modules()} - {"Sequential"}
    rules = []
    for _ in range(draw(st.integers(1, 4))):
        type_name = draw(st.sampled_from(sorted(present)))
        params = ["weight"] if type_name == "Embedding" else ["weight", "bias"]
        param = draw(st.sampled_from(params))
        dims = 2 if param == "weight" and type_name in ("Linear", "ParentLinear", "Conv2d",
                                                        "Embedding") else 1
        method = draw(st.sampled_from([m for m, (_, low) in METHODS.items() if low <= dims]))
        rules.append({"types": [type_name], "param": param, "method": method,
                      "args": METHODS[method][0]})
    return layers, seed, rules


def literal_weight_init(rules: list[dict]):
    """The weight_init a user would write for `rules`: isinstance, then each call."""
    def weight_init(m: nn.Module) -> None:
        for rule in rules:
            if isinstance(m, CLASSES.get(rule["types"][0]) or getattr(nn, rule["types"][0])):
                tensor = getattr(m, rule["param"])
                if tensor is not None:
                    getattr(nn.init, rule["method"] + "_")(tensor, **rule["args"])
    return weight_init


@given(models_and_rules())
def test_rules_equal_literal_code_for_random_models_and_rules(case):
    layers, seed, rules = case
    torch.manual_seed(0)
    model = nn.Sequential(*layers)
    expected = copy.deepcopy(model)
    torch.manual_seed(seed)
    expected.apply(literal_weight_init(rules))
    session = Session(model)
    session.apply({"op": "init", "seed": seed, "rules": rules})
    assert_bits_equal(model, expected)
