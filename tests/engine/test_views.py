"""Views far larger than their storage cost what their storage costs (issue 8 §3).

`torch.zeros(1).expand(10**6, 10**6)` is a 1.6 KB `.pt` file holding 10**12 elements.
`diff`, statistics and previews work on the storage: equal storage and equal view are
equal, broadcast dimensions count once; the results equal those of the same tensors
written out densely (checked on small ones, property-based), and the big ones finish
in seconds where walking every element would take hours.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from engine import Session, stats
from engine.diff import diff_files, diff_sessions

HUGE = (10**6, 10**6)


@st.composite
def broadcast_views(draw, max_dims: int = 3):
    """A random tensor expanded along random dimensions, and its dense copy."""
    dims = draw(st.integers(1, max_dims))
    shape = [draw(st.integers(1, 4)) for _ in range(dims)]
    broadcast = [draw(st.booleans()) for _ in range(dims)]
    base_shape = [1 if flag else size for size, flag in zip(shape, broadcast, strict=True)]
    seed = draw(st.integers(0, 2**16))
    values = torch.randn(base_shape, generator=torch.Generator().manual_seed(seed))
    if draw(st.booleans()):
        values = values.round()  # equal values are common in the other view
    view = values.expand(shape)
    return view, view.contiguous()


@given(broadcast_views(), broadcast_views())
def test_diff_of_views_equals_diff_of_their_dense_copies(left, right):
    (view_a, dense_a), (view_b, dense_b) = left, right
    if view_a.shape != view_b.shape:
        view_b = view_b.reshape(-1)[:1].expand(view_a.shape)
        dense_b = view_b.contiguous()
    by_view = diff_sessions(Session(checkpoint={"t": view_a}), Session(checkpoint={"t": view_b}))
    dense = diff_sessions(Session(checkpoint={"t": dense_a}), Session(checkpoint={"t": dense_b}))
    assert by_view == dense


@given(broadcast_views())
def test_statistics_of_a_view_equal_those_of_its_dense_copy(pair):
    view, dense = pair
    by_view, by_dense = stats.tensor_stats(view), stats.tensor_stats(dense)
    by_view.pop("note", None)
    for key, value in by_dense.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(by_view[key]), key
        elif isinstance(value, float):
            assert by_view[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert by_view[key] == value, key


@given(broadcast_views(max_dims=2))
def test_the_heatmap_of_a_view_equals_that_of_its_dense_copy(pair):
    view, dense = pair
    if view.dim() != 2:
        return
    image_view, steps_view = stats.heatmap_preview(view, max_side=2)
    image_dense, steps_dense = stats.heatmap_preview(dense, max_side=2)
    assert steps_view == steps_dense
    assert torch.allclose(image_view, image_dense, atol=1e-6)


@pytest.fixture
def huge_files(tmp_path):
    paths = {}
    for name, tensor in (("zeros", torch.zeros(1).expand(*HUGE)),
                         ("ones", torch.ones(1).expand(*HUGE)),
                         ("rows", torch.arange(float(HUGE[1])).expand(*HUGE)),
                         ("cols", torch.arange(float(HUGE[0]))[:, None].expand(*HUGE))):
        paths[name] = tmp_path / f"{name}.pt"
        torch.save({"w": tensor, "b": torch.ones(3)}, paths[name])
    return paths


@pytest.mark.timeout(120)
def test_diff_of_huge_views_compares_storages(huge_files):
    assert diff_files(huge_files["zeros"], huge_files["zeros"])["identical"]
    changed = diff_files(huge_files["zeros"], huge_files["ones"])["changed"]
    assert changed == [{"name": "w", "numel": 10**12, "changed_elements": 10**12,
                        "max_abs_diff": 1.0}]
    changed = diff_files(huge_files["zeros"], huge_files["rows"])["changed"][0]
    assert changed["changed_elements"] == 10**12 - 10**6  # column 0 holds zeros
    assert changed["max_abs_diff"] == HUGE[1] - 1
    # Broadcast along different dimensions: no shared storage to compare; said so.
    changed = diff_files(huge_files["rows"], huge_files["cols"])["changed"][0]
    assert changed["changed_elements"] is None
    assert "not compared element by element" in changed["note"]


@pytest.mark.timeout(120)
def test_statistics_and_previews_of_huge_views_use_the_storage(huge_files):
    session = Session.open(huge_files["rows"])
    tensor = session.document.tensor("w")
    summary = stats.tensor_stats(tensor)
    assert summary["numel"] == 10**12
    assert summary["min"] == 0
    assert summary["max"] == HUGE[1] - 1
    assert summary["mean"] == pytest.approx((HUGE[1] - 1) / 2)
    assert summary["finite_count"] == 10**12
    assert "broadcast" in summary["note"]
    image, steps = stats.heatmap_preview(stats.matrix_view(tensor))
    assert image.shape == (1024, 1024)
    assert steps == (977, 977)
    assert image[5, 0] == pytest.approx(488.0)
    overlapping = torch.arange(2.0 * HUGE[0]).as_strided(HUGE, (1, 1))
    summary = stats.tensor_stats(overlapping)
    assert "min" in summary["estimated"]
    assert summary["sampled"]
    assert math.isfinite(summary["max"])


def test_cli_diff_of_a_huge_view_answers_in_one_run(huge_files):
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "diff",
                             str(huge_files["zeros"]), str(huge_files["zeros"])],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "identical (2 tensors)"
