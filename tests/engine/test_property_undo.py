"""Property: any sequence of edits, undone completely, gives the original model exactly
(bits, objects, flags, modes); redone completely, gives the final model exactly; and
replaying the recipe on a fresh copy of the starting model gives the same tensors."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from engine import EditError, Session
from engine.edits.init import INITIALIZERS
from engine.recipe import replay
from tests.models import MLP, SmallCNN, TiedLM
from tests.snapshots import assert_same, assert_same_state_dict, snapshot

MODELS = {
    "mlp": MLP,
    "cnn_bn": SmallCNN,
    "tied_lm": TiedLM,
    "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
}
EXPRESSIONS = ["x * 0.5", "x * (x.abs() >= 0.05)", "clamp(x, -0.1, 0.1)", "where(x > 0, x, 0)",
               "x - x.mean()", "sign(x) * sqrt(x.abs())", "randn_like(x) * 0.01", "x.std() + x"]
LAYERS = [{"type": "Identity"}, {"type": "Dropout", "p": 0.2},
          {"type": "Sequential", "layers": [{"type": "ReLU"}, {"type": "Identity"}]}]

_FILES = Path(tempfile.mkdtemp(prefix="weightsmith-property-"))


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return MODELS[name]()


def start_file(name: str) -> str:
    """A state dict of the starting model under another seed, for `load` edits."""
    path = _FILES / f"{name}.pt"
    if not path.exists():
        torch.manual_seed(1)
        torch.save(MODELS[name]().state_dict(), path)
    return str(path)


def tensor_names(session: Session, floats_only: bool = True) -> list[str]:
    names = []
    for entry in session.document.tensor_entries():
        if not floats_only or entry.tensor.is_floating_point():
            names.append(entry.name)
    return names


def parameter_names(session: Session) -> list[str]:
    return [entry.name for entry in session.document.tensor_entries() if entry.kind == "parameter"]


def module_paths(session: Session) -> list[str]:
    return [path for path, _ in session.model.named_modules() if path]


@st.composite
def an_edit(draw, session: Session, model_name: str) -> dict:
    op = draw(st.sampled_from(["set_value", "set_index", "set_expr", "set_from", "scale", "add",
                               "init", "init_types", "reset", "freeze", "unfreeze", "tie",
                               "tie_module", "untie", "replace", "replace_head", "load", "group"]))
    names = tensor_names(session)
    params = parameter_names(session)
    if not params or not names:
        # Every layer was replaced by one without parameters: an edit that must be
        # refused (and leave no trace) is all there is left to try.
        return {"op": "freeze", "targets": ["*"]}
    if op == "group":
        first = draw(an_edit(session, model_name))
        return {"op": "group", "edits": [first, {"op": "freeze",
                                                  "targets": [draw(st.sampled_from(params))]}]}
    if op == "set_value":
        return {"op": "set", "target": draw(st.sampled_from(names)),
                "value": draw(st.floats(-3, 3, allow_nan=False, width=32))}
    if op == "set_index":
        name = draw(st.sampled_from(names))
        shape = session.document.tensor_meta(name)[0]
        if not shape:
            return {"op": "set", "target": name, "value": 1.0}
        first = draw(st.integers(-shape[0], shape[0] - 1))
        return {"op": "set", "target": name, "index": f"{first}", "value": draw(
            st.floats(-1, 1, allow_nan=False, width=32))}
    if op == "set_expr":
        return {"op": "set", "target": draw(st.sampled_from(names)),
                "expr": draw(st.sampled_from(EXPRESSIONS))}
    if op == "set_from":
        target = draw(st.sampled_from(names))
        shape = session.document.tensor_meta(target)[0]
        same = [n for n in names if session.document.tensor_meta(n)[0] == shape]
        return {"op": "set", "target": target, "from": draw(st.sampled_from(same))}
    if op in ("scale", "add"):
        return {"op": op, "targets": [draw(st.sampled_from(params))],
                "value": draw(st.floats(-2, 2, allow_nan=False, width=32))}
    if op == "init":
        method = draw(st.sampled_from(sorted(INITIALIZERS)))
        args = {"constant": {"val": 0.25}, "sparse": {"sparsity": 0.3}}.get(method, {})
        target = draw(st.sampled_from(params + module_paths(session)))
        return {"op": "init", "targets": [target], "method": method, "args": args}
    if op == "init_types":
        types = sorted({type(m).__name__ for _, m in session.model.named_modules()
                        if isinstance(m, nn.Linear | nn.Conv2d | nn.Embedding)})
        return {"op": "init", "types": [draw(st.sampled_from(types))], "param": "weight",
                "method": draw(st.sampled_from(["xavier_uniform", "kaiming_normal", "normal"]))}
    if op == "reset":
        return {"op": "init", "targets": [draw(st.sampled_from(module_paths(session)))],
                "method": "reset"}
    if op in ("freeze", "unfreeze"):
        return {"op": op, "targets": [draw(st.sampled_from(params + module_paths(session)))],
                "bn_eval": draw(st.booleans())}
    if op == "tie":
        pairs = [(a, b) for a in params for b in params
                 if a != b and session.document.tensor_meta(a) == session.document.tensor_meta(b)
                 and session.document.tensor(a) is not session.document.tensor(b)]
        if not pairs:
            return {"op": "tie", "target": params[0], "source": params[-1]}
        target, source = draw(st.sampled_from(pairs))
        return {"op": "tie", "target": target, "source": source}
    if op == "tie_module":
        modules = dict(session.model.named_modules())
        shapes = {path: (type(m), [tuple(t.shape) for t in m.state_dict().values()])
                  for path, m in modules.items() if path}
        pairs = [(a, b) for a in shapes for b in shapes
                 if a != b and shapes[a] == shapes[b] and shapes[a][1]
                 and not a.startswith(b + ".") and not b.startswith(a + ".")
                 and modules[a] is not modules[b]]
        if not pairs:
            return {"op": "tie", "target": params[0], "source": params[-1]}
        target, source = draw(st.sampled_from(pairs))
        return {"op": "tie", "target": target, "source": source}
    if op == "untie":
        tied = [n for group in session.document.tie_groups() for n in group] or params
        return {"op": "untie", "target": draw(st.sampled_from(tied))}
    if op == "replace":
        return {"op": "replace", "target": draw(st.sampled_from(module_paths(session))),
                "module": draw(st.sampled_from(LAYERS))}
    if op == "replace_head":
        return {"op": "replace_head", "num_classes": draw(st.integers(1, 7)),
                "hidden": draw(st.sampled_from([[], [3]]))}
    return {"op": "load", "path": start_file(model_name), "skip_mismatched": True,
            "include": draw(st.sampled_from([["*"], ["*.weight"], ["*bias"]]))}


def check_sequence(model_name: str, data: st.DataObject, max_steps: int) -> None:
    model = build(model_name)
    session = Session(model)
    start = snapshot(model)
    applied = 0
    for _ in range(data.draw(st.integers(1, max_steps), label="steps")):
        spec = data.draw(an_edit(session, model_name), label="edit")
        before = snapshot(model)
        try:
            session.apply(spec)
        except EditError:
            # A rejected edit leaves no trace at all.
            assert_same(before, snapshot(model))
            continue
        applied += 1
    final = snapshot(model)
    final_state = {k: v.clone() for k, v in model.state_dict().items()}
    assert len(session.history.steps) == applied
    while session.can_undo:
        session.undo()
    assert_same(start, snapshot(model))
    while session.can_redo:
        session.redo()
    assert_same(final, snapshot(model))
    # Replay the recipe on a fresh copy of the starting model: the same tensors.
    fresh = Session(build(model_name))
    replay(fresh, session.recipe())
    assert_same_state_dict(final_state, fresh.model.state_dict())


@pytest.mark.parametrize("model_name", ["mlp", "cnn_bn", "tied_lm"])
@given(data=st.data())
def test_random_edit_sequences_undo_and_redo_exactly(model_name, data):
    check_sequence(model_name, data, max_steps=6)


@given(data=st.data())
@settings(max_examples=8)
def test_random_edit_sequences_on_resnet18(data):
    check_sequence("resnet18", data, max_steps=4)
