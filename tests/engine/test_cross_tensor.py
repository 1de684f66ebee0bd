"""Across tensors: the `t("name")` accessor of expressions (fuzzed) and the checkpoint ops
concat, split, permute, transpose, reshape and copy_from_file, each undone exactly."""

from __future__ import annotations

import ast

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file

from engine import EditError, Session
from engine.expr import compile_expr
from tests.snapshots import bits


def qkv_session() -> Session:
    generator = torch.Generator().manual_seed(0)
    return Session(checkpoint={
        "attn.q.weight": torch.randn(4, 6, generator=generator),
        "attn.k.weight": torch.randn(4, 6, generator=generator),
        "attn.v.weight": torch.randn(4, 6, generator=generator),
        "attn.o.weight": torch.randn(6, 4, generator=generator),
        "norm.weight": torch.ones(6),
    })


def state_bits(session: Session) -> dict[str, torch.Tensor]:
    return {name: bits(tensor) for name, tensor in session.state_dict().items()}


def assert_restored(session: Session, before: dict[str, torch.Tensor]) -> None:
    after = state_bits(session)
    assert list(after) == list(before)
    assert all(torch.equal(after[name], before[name]) for name in before)


# ---------------------------------------------------------------------- t("name")
def test_an_expression_reads_another_tensor():
    session = qkv_session()
    q, k = session.state_dict()["attn.q.weight"].clone(), session.state_dict()["attn.k.weight"]
    session.apply({"op": "set", "target": "attn.q.weight",
                   "expr": '(x + t("attn.k.weight")) / 2'})
    assert torch.equal(session.state_dict()["attn.q.weight"], (q + k) / 2)
    session.apply({"op": "set", "target": "norm.weight",
                   "expr": 'x * t("attn.o.weight").abs().mean()'})
    session.undo()
    session.undo()
    assert torch.equal(session.state_dict()["attn.q.weight"], q)


def test_unknown_names_and_shapes_that_do_not_broadcast_are_one_line():
    session = qkv_session()
    before = state_bits(session)
    with pytest.raises(EditError) as error:
        session.apply({"op": "set", "target": "attn.q.weight", "expr": 'x + t("nope")'})
    assert str(error.value) == "set.expr: t('nope') names no tensor of the document"
    with pytest.raises(EditError) as error:
        session.apply({"op": "set", "target": "attn.q.weight",
                       "expr": 'x + t("attn.o.weight")'})
    message = str(error.value)
    assert "\n" not in message
    assert "x is (4, 6); t('attn.o.weight') is (6, 4)" in message
    with pytest.raises(EditError, match=r"shape \(6, 6\) does not fit attn.q.weight"):
        session.apply({"op": "set", "target": "attn.q.weight",
                       "expr": 't("attn.o.weight") @ x'})
    assert_restored(session, before)


def test_in_model_mode_names_are_canonical_and_the_script_writes_the_same_code():
    from engine.script_export import export_script
    from tests.models import MLP, seeded

    model = seeded(MLP)
    session = Session(model)
    session.apply({"op": "set", "target": "fc1.weight", "expr": 'x * 0 + t("fc1.weight").T.T'})
    session.apply({"op": "set", "target": "fc2.weight", "expr": '(x + t("fc2.weight") * 2) / 3'})
    script = export_script(session)
    assert "_t('fc2.weight')" in script
    namespace: dict = {}
    exec(compile(script, "edits.py", "exec"), namespace)
    fresh = seeded(MLP)
    namespace["apply_edits"](fresh)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, fresh.state_dict()[name]), name


NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=30)


@given(NAMES)
def test_the_accessor_takes_exactly_one_literal_name(name):
    source = f"t({name!r})"
    try:
        compiled = compile_expr(source)
    except EditError:
        assert name == "" or "\0" in name
        return
    assert compiled.tensor_names == (name,)
    # The generated code is one call of _t with that very string, and nothing else.
    tree = ast.parse(compiled.code, mode="eval").body
    assert isinstance(tree, ast.Call)
    assert isinstance(tree.func, ast.Name)
    assert tree.func.id == "_t"
    assert [arg.value for arg in tree.args] == [name]
    seen = []
    value = compiled.evaluate(torch.zeros(2), tensors={name: torch.ones(2)})
    seen.append(value)
    assert torch.equal(value, torch.ones(2))


ACCESSOR_ABUSE = [
    "t(x)", "t", "t()", 't("a", "b")', 't(name="a")', 't("a").__class__', 't("a")("b")',
    't(b"a")', 't(f"{x}")', 't("a" if x else "b")', 't(*["a"])', 't(**{"n": "a"})',
    't("a").__globals__', "t.__call__('a')", "(t)", "[t('a')]", "t(1)", 't(("a",))',
    't(t("a"))', "_t('a')", 't("a")[0]', "lambda: t('a')", "t('a').numpy()",
    "__import__('os')", "x.__class__", "getattr(x, 't')('a')",
]


@pytest.mark.parametrize("source", ACCESSOR_ABUSE)
def test_every_other_use_of_the_accessor_is_refused(source):
    with pytest.raises(EditError, match="not allowed in an expression"):
        compile_expr(source)


@given(st.lists(st.sampled_from(['t("a")', 't("b")', "x", "1.5", "t('a').abs()", "x.sign()"]),
                min_size=1, max_size=5),
       st.lists(st.sampled_from(["+", "-", "*"]), min_size=4, max_size=4))
def test_random_expressions_read_only_the_named_tensors(parts, operators):
    source = parts[0]
    for part, operator in zip(parts[1:], operators, strict=False):
        source = f"({source} {operator} {part})"
    compiled = compile_expr(source)
    names = set(compiled.tensor_names)
    assert names <= {"a", "b"}
    tensors = {"a": torch.full((3,), 2.0), "b": torch.full((3,), -1.0)}
    reference = eval(source, {"t": lambda name: tensors[name], "x": torch.ones(3)})
    got = compiled.evaluate(torch.ones(3), tensors={name: tensors[name] for name in names})
    assert torch.equal(got, torch.as_tensor(reference))


# ---------------------------------------------------------------------- checkpoint ops
def test_fuse_qkv_then_split_it_back():
    session = qkv_session()
    before = state_bits(session)
    state = session.state_dict()
    q, k, v = (state[f"attn.{n}.weight"].clone() for n in "qkv")
    session.apply({"op": "concat", "sources": ["attn.q.weight", "attn.k.weight", "attn.v.weight"],
                   "to": "attn.qkv.weight", "dim": 0})
    names = list(session.document.entries)
    assert names == ["attn.qkv.weight", "attn.o.weight", "norm.weight"]
    assert torch.equal(session.state_dict()["attn.qkv.weight"], torch.cat([q, k, v]))
    session.apply({"op": "split", "source": "attn.qkv.weight", "sizes": [4, 4, 4],
                   "to": ["attn.q.weight", "attn.k.weight", "attn.v.weight"]})
    assert_restored(session, before)
    session.undo()
    session.undo()
    assert_restored(session, before)
    session.redo()
    assert next(iter(session.document.entries)) == "attn.qkv.weight"


def test_concat_keeping_sources_and_along_dim_1():
    session = qkv_session()
    session.apply({"op": "concat", "sources": ["attn.q.weight", "attn.k.weight"],
                   "to": "qk", "dim": -1, "keep_sources": True})
    assert list(session.document.entries)[:3] == ["attn.q.weight", "qk", "attn.k.weight"]
    assert session.state_dict()["qk"].shape == (4, 12)


@pytest.mark.parametrize(("spec", "message"), [
    ({"op": "concat", "sources": ["attn.q.weight", "attn.o.weight"], "to": "x"},
     "concat.sources: 'attn.o.weight' has shape (6, 4), which does not join 'attn.q.weight' "
     "(4, 6) along dim 0"),
    ({"op": "concat", "sources": ["attn.q.weight", "attn.k.weight"], "to": "norm.weight"},
     "concat.to: a tensor named 'norm.weight' exists already"),
    ({"op": "concat", "sources": ["attn.q.weight", "attn.k.weight"], "to": "x", "dim": 2},
     "concat.dim: dim 2 is out of range for 'attn.q.weight' (2 dims)"),
    ({"op": "concat", "sources": ["attn.q.weight"], "to": "x"},
     "concat.sources: expected a list of two or more tensor names"),
    ({"op": "split", "source": "attn.q.weight", "sizes": [3, 3], "to": ["a", "b"]},
     "split.sizes: 3 + 3 = 6, but 'attn.q.weight' has 4 along dim 0"),
    ({"op": "split", "source": "attn.q.weight", "sizes": [2, 2], "to": ["a"]},
     "split.to: 1 names for 2 sizes"),
    ({"op": "permute", "target": "attn.q.weight", "dims": [0, 0]},
     "permute.dims: [0, 0] is not a permutation of the 2 dims"),
    ({"op": "transpose", "target": "norm.weight"},
     "transpose.target: 'norm.weight' has 1 dim(s); transpose swaps two"),
    ({"op": "reshape", "target": "attn.q.weight", "shape": [5, 5]},
     "reshape.shape: (5, 5) has 25 elements; 'attn.q.weight' (4, 6) has 24"),
    ({"op": "reshape", "target": "attn.q.weight", "shape": [5, -1]},
     "reshape.shape: (5, -1) cannot hold the 24 elements"),
    ({"op": "reshape", "target": "attn.q.weight", "shape": [-1, -1]},
     "reshape.shape: at most one size may be -1"),
])
def test_bad_layout_ops_are_one_line_and_change_nothing(spec, message):
    session = qkv_session()
    before = state_bits(session)
    with pytest.raises(EditError) as error:
        session.apply(spec)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert_restored(session, before)


def test_permute_transpose_reshape_follow_torch_and_undo():
    session = qkv_session()
    before = state_bits(session)
    q = session.state_dict()["attn.q.weight"].clone()
    session.apply({"op": "transpose", "target": "attn.q.weight"})
    assert torch.equal(session.state_dict()["attn.q.weight"], q.T)
    session.apply({"op": "reshape", "target": "attn.q.weight", "shape": [2, 3, -1]})
    assert torch.equal(session.state_dict()["attn.q.weight"], q.T.reshape(2, 3, 4))
    session.apply({"op": "permute", "target": "attn.q.weight", "dims": [2, 0, 1]})
    expected = q.T.reshape(2, 3, 4).permute(2, 0, 1)
    assert torch.equal(session.state_dict()["attn.q.weight"], expected)
    assert session.state_dict()["attn.q.weight"].is_contiguous()
    for _ in range(3):
        session.undo()
    assert_restored(session, before)


def test_layout_ops_need_checkpoint_mode():
    from tests.models import MLP

    with pytest.raises(EditError, match="not available in model mode"):
        Session(MLP()).apply({"op": "transpose", "target": "fc1.weight"})


def test_copy_from_file_adds_or_replaces_by_name(tmp_path):
    other = {"head.weight": torch.randn(3, 6), "attn.q.weight": torch.zeros(4, 6)}
    save_file(other, str(tmp_path / "other.safetensors"))
    session = qkv_session()
    before = state_bits(session)
    session.apply({"op": "copy_from_file", "path": str(tmp_path / "other.safetensors"),
                   "source": "head.weight"})
    assert list(session.document.entries)[-1] == "head.weight"
    assert torch.equal(session.state_dict()["head.weight"], other["head.weight"])
    with pytest.raises(EditError, match=r"'attn.q.weight' exists already"):
        session.apply({"op": "copy_from_file", "path": str(tmp_path / "other.safetensors"),
                       "source": "attn.q.weight"})
    session.apply({"op": "copy_from_file", "path": str(tmp_path / "other.safetensors"),
                   "source": "attn.q.weight", "replace": True})
    assert torch.equal(session.state_dict()["attn.q.weight"], torch.zeros(4, 6))
    with pytest.raises(EditError, match="has no tensor 'nope'"):
        session.apply({"op": "copy_from_file", "path": str(tmp_path / "other.safetensors"),
                       "source": "nope"})
    session.undo()
    session.undo()
    assert_restored(session, before)


def test_tied_names_follow_a_layout_change():
    shared = torch.randn(3, 2)
    session = Session(checkpoint={"a": shared, "b": shared})
    session.apply({"op": "transpose", "target": "a"})
    assert session.document.entries["a"] is session.document.entries["b"]
    assert session.state_dict()["b"].shape == (2, 3)
