"""Restricted expressions and index text: what is allowed computes like torch; the rest is
rejected before anything runs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from engine import EditError
from engine.expr import compile_expr
from engine.indexing import parse_index, region_shape

X = torch.linspace(-1, 1, 12).reshape(3, 4)


@pytest.mark.parametrize(("source", "expected"), [
    ("x * 2", X * 2),
    ("x * (x.abs() >= 0.5)", X * (X.abs() >= 0.5)),
    ("clamp(x, -0.2, 0.2)", torch.clamp(X, -0.2, 0.2)),
    ("x.clamp(min=0)", X.clamp(min=0)),
    ("where(x > 0, x, 0.0)", torch.where(X > 0, X, 0.0)),
    ("sign(x) * sqrt(abs(x))", torch.sign(X) * torch.sqrt(torch.abs(X))),
    ("(x - x.mean()) / x.std()", (X - X.mean()) / X.std()),
    ("x.mean(dim=0, keepdim=True)", X.mean(dim=0, keepdim=True)),
    ("exp(x) + log(abs(x) + 1)", torch.exp(X) + torch.log(torch.abs(X) + 1)),
    ("x ** 2 * pi", X ** 2 * 3.141592653589793),
    ("-x", -X),
    ("x.T.T", X),
    ("zeros_like(x)", torch.zeros_like(X)),
    ("1.5", torch.tensor(1.5)),
])
def test_allowed_expressions_compute_like_torch(source, expected):
    result = compile_expr(source).evaluate(X)
    assert torch.equal(result, expected)


@pytest.mark.parametrize("source", [
    "__import__('os').system('true')", "x.__class__", "x.__class__.__bases__", "open('f')",
    "lambda: 1", "[x for x in y]", "x[0]", "y", "torch.abs(x)", "x.numpy()", "x.add_(1)",
    "x.data", "eval('1')", "'a'", "x if x else x", "x and x", "{1: 2}", "(x := 1)",
    "getattr(x, 'abs')", "x.abs(out=x)", "1 < x < 2", "randn_like(x, 2)", "abs", "f'{x}'",
    "x << 2", "9 ** 9 ** 9 ** 9",
])
def test_rejected_before_running(source):
    # Everything is refused when compiled, except a power overflow, found at once when run.
    with pytest.raises(EditError, match=r"^expr: "):
        compile_expr(source).evaluate(X)


def test_power_overflow_is_an_error_not_a_hang():
    with pytest.raises(EditError, match="arithmetic"):
        compile_expr("x * 9 ** 9 ** 9").evaluate(X)


def test_random_functions_use_the_given_generator():
    compiled = compile_expr("randn_like(x)")
    assert compiled.uses_random
    one = compiled.evaluate(X, torch.Generator().manual_seed(3))
    two = compiled.evaluate(X, torch.Generator().manual_seed(3))
    assert torch.equal(one, two)
    assert torch.equal(one, torch.randn(3, 4, generator=torch.Generator().manual_seed(3)))


@st.composite
def index_and_shape(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    parts = []
    for size in shape[: draw(st.integers(1, len(shape)))]:
        kind = draw(st.sampled_from(["int", "slice", "full", "list"]))
        if kind == "int":
            parts.append(str(draw(st.integers(-size, size - 1))))
        elif kind == "slice":
            start = draw(st.integers(-size, size))
            stop = draw(st.integers(-size, size))
            step = draw(st.integers(1, 3))
            parts.append(f"{start}:{stop}:{step}")
        elif kind == "list" and not any(p.startswith("[") for p in parts):
            parts.append(str(draw(st.lists(st.integers(-size, size - 1), min_size=1,
                                           max_size=3))))
        else:
            parts.append(":")
    return ", ".join(parts), shape


@given(index_and_shape())
def test_parsed_index_selects_what_numpy_style_text_means(case):
    text, shape = case
    tensor = torch.arange(torch.Size(shape).numel()).reshape(shape)
    index = parse_index(text, shape)
    expected = eval(f"tensor[{text}]", {"tensor": tensor})  # trusted test input
    assert torch.equal(tensor[index], expected)
    assert region_shape(shape, index) == tuple(expected.shape)


@pytest.mark.parametrize(("text", "message"), [
    ("5", "out of range"), ("0, 0, 0", "dims"), ("x", "only integers"), ("0:2:0", "positive"),
    ("..., ...", "one '...'"), ("[0], [1]", "one list"), ("[]", "empty"), ("0; 1", "not an index"),
])
def test_bad_index_text(text, message):
    with pytest.raises(EditError, match=message):
        parse_index(text, (3, 4))
