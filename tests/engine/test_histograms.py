"""engine.histograms: the bin count from the data, counts as numpy's, overlays on shared bins."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine import histograms

finite_floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)


@given(arrays(np.float64, st.integers(2, 3000), elements=finite_floats))
def test_the_bin_count_is_numpys_auto_rule_capped(values):
    if values.min() == values.max():
        assert histograms.choose_bins(torch.from_numpy(values)) == 1
        return
    ours = histograms.choose_bins(torch.from_numpy(values))
    theirs = min(histograms.MAX_BINS, len(np.histogram_bin_edges(values, "auto")) - 1)
    # numpy divides the range by a width and rounds up: one bin more at an exact boundary.
    assert abs(ours - theirs) <= 1
    assert 1 <= ours <= histograms.MAX_BINS


def test_a_small_tensor_gets_few_bins_and_a_big_one_is_capped():
    torch.manual_seed(0)
    assert histograms.choose_bins(torch.randn(144, dtype=torch.float64)) < 15
    assert histograms.choose_bins(torch.randn(200_000, dtype=torch.float64)) == \
        histograms.MAX_BINS
    assert histograms.choose_bins(torch.randn(200_000, dtype=torch.float64), cap=30) == 30


@given(arrays(np.float64, st.integers(0, 500), elements=finite_floats),
       st.integers(1, 40), st.floats(-10, 10), st.floats(0.01, 100))
def test_counts_are_numpys_counts(values, bins, low, width):
    edges = np.linspace(low, low + width, bins + 1)
    ours = histograms.count_on(torch.from_numpy(values), torch.from_numpy(edges))
    np.testing.assert_array_equal(ours.numpy(), np.histogram(values, edges)[0])


def test_integers_get_one_bin_each_and_bools_two():
    snapshot = histograms.take_snapshot(torch.tensor([0, 1, 1, 4, 4, 4]), 100)
    shown = histograms.histogram(snapshot)
    assert shown.edges.tolist() == [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5]
    assert shown.counts.tolist() == [1, 2, 0, 0, 3]
    flags = histograms.histogram(histograms.take_snapshot(torch.tensor([True, False, True]),
                                                          100))
    assert flags.counts.tolist() == [1, 2]
    constant = histograms.histogram(histograms.take_snapshot(torch.full((5,), 2.5), 100))
    assert constant.counts.tolist() == [5]
    assert constant.edges.tolist() == [2.0, 3.0]


@given(st.integers(1, 400), st.data())
def test_an_overlay_counts_both_on_one_set_of_bins_and_finds_every_change(numel, data):
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    tensor = torch.randn(numel, generator=generator)
    before = histograms.take_snapshot(tensor, 1000)
    places = data.draw(st.lists(st.integers(0, numel - 1), unique=True, max_size=numel))
    deltas = data.draw(st.lists(st.floats(0.5, 50.0) | st.floats(-50.0, -0.5),
                                min_size=len(places), max_size=len(places)))
    edited = tensor.clone()
    for place, delta in zip(places, deltas, strict=True):
        edited[place] += delta
    after = histograms.take_snapshot(edited, 1000, like=before)
    result = histograms.overlay(before, after)
    old, new = tensor.double().numpy(), edited.double().numpy()
    low, high = min(old.min(), new.min()), max(old.max(), new.max())
    if low == high:  # one value: one bin around it
        low, high = low - 0.5, high + 0.5
    assert result.edges[0] == low
    assert result.edges[-1] == high
    np.testing.assert_array_equal(result.before.numpy(), np.histogram(old, result.edges)[0])
    np.testing.assert_array_equal(result.after.numpy(), np.histogram(new, result.edges)[0])
    assert result.changed == len(places)
    assert not result.estimated
    if places:
        assert result.largest == pytest.approx(float(np.abs(new - old).max()))
    else:
        assert result.largest is None


def test_one_changed_element_moves_one_element_between_bins():
    torch.manual_seed(1)
    tensor = torch.randn(10_000)
    before = histograms.take_snapshot(tensor, 1 << 18)
    edited = tensor.clone()
    edited[7] = edited[7] + 0.01
    result = histograms.overlay(before, histograms.take_snapshot(edited, 1 << 18, like=before))
    moved = (result.after - result.before).abs().sum()
    assert moved in (0, 2)  # within its bin, or out of one bin and into the next
    assert result.summary(10_000) == "Changed: 1 of 10,000 elements · largest change " + \
        f"{float(edited[7] - tensor[7]):.6g}"


def test_nan_equals_nan_and_dtype_changes_compare_values():
    tensor = torch.tensor([1.0, float("nan"), 3.0])
    before = histograms.take_snapshot(tensor, 10)
    same = histograms.overlay(before, histograms.take_snapshot(tensor.clone(), 10, like=before))
    assert same.changed == 0
    assert same.largest is None
    cast = histograms.overlay(before, histograms.take_snapshot(tensor.half(), 10, like=before))
    assert cast.changed == 0
    replaced = tensor.clone()
    replaced[1] = 2.0
    result = histograms.overlay(before, histograms.take_snapshot(replaced, 10, like=before))
    assert result.changed == 1
    assert result.largest is None  # NaN -> 2 has no finite size


def test_a_big_tensor_is_compared_on_the_same_sample_and_says_it_estimates():
    torch.manual_seed(2)
    tensor = torch.randn(300, 200)
    before = histograms.take_snapshot(tensor, 1000, copy_limit=10_000)
    assert before.sampled
    assert before.whole is None
    unchanged = histograms.take_snapshot(tensor, 1000, like=before, copy_limit=10_000)
    assert all(torch.equal(a, b) for a, b in zip(before.coords, unchanged.coords, strict=True))
    quiet = histograms.overlay(before, unchanged)
    assert quiet.estimated
    assert quiet.changed == 0
    assert quiet.summary(60_000).startswith("No change found in a sample of 1,000 of 60,000")
    half = tensor.clone()
    half[:150] *= 2
    result = histograms.overlay(before, histograms.take_snapshot(half, 1000, like=before,
                                                                 copy_limit=10_000))
    assert result.estimated
    assert 350 < result.changed < 650  # about half of the 1,000 sampled places
    assert "about" in result.summary(60_000)
    # Copied whole (within copy_limit), the count is exact though the histogram samples.
    exact_before = histograms.take_snapshot(tensor, 1000)
    exact = histograms.overlay(exact_before, histograms.take_snapshot(half, 1000,
                                                                      like=exact_before))
    assert exact_before.sampled
    assert not exact.estimated
    assert exact.changed == 150 * 200


def test_complex_tensors_are_counted_by_magnitude_and_compared_exactly():
    tensor = torch.tensor([3 + 4j, 1j], dtype=torch.complex64)
    before = histograms.take_snapshot(tensor, 10)
    assert before.sample.tolist() == [5.0, 1.0]
    edited = tensor.clone()
    edited[1] = 2j
    result = histograms.overlay(before, histograms.take_snapshot(edited, 10, like=before))
    assert result.changed == 1
    assert math.isclose(result.largest, 1.0)


def test_a_shape_change_compares_nothing():
    before = histograms.take_snapshot(torch.ones(4), 10)
    result = histograms.overlay(before, histograms.take_snapshot(torch.ones(5), 10, like=before))
    assert result.changed is None
    assert result.summary(5) == "Shape changed: no element to compare"
    assert result.before.sum() == 4
    assert result.after.sum() == 5
