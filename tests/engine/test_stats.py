"""Tests of engine.stats: statistics, sampling, histograms, previews, filter grids, overview."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from engine import stats
from engine.progress import Cancelled, Progress
from engine.session import Session
from tests.models import MLP, SmallCNN, TiedLM, seeded

FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

finite_floats = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=32)


@st.composite
def float_tensors(draw, min_size: int = 1, max_size: int = 60):
    """A float tensor of 1-3 dims, possibly non-contiguous, in one of several dtypes."""
    values = draw(st.lists(finite_floats, min_size=min_size, max_size=max_size))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    tensor = torch.tensor(values, dtype=torch.float64).to(dtype)
    n = tensor.numel()
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    rows = draw(st.sampled_from(divisors))
    if draw(st.booleans()):
        tensor = tensor.reshape(rows, n // rows)
        if draw(st.booleans()):
            tensor = tensor.t()  # non-contiguous
    return tensor


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make chunks tiny so that the chunked paths run on small tensors."""
    monkeypatch.setattr(stats, "CHUNK", 7)


# ---------------------------------------------------------------------- tensor_stats
@given(tensor=float_tensors())
def test_exact_stats_equal_torch(tensor: torch.Tensor) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stats, "CHUNK", 5)
        result = stats.tensor_stats(tensor)
    reference = tensor.double()
    assert result["sampled"] is False
    assert result["numel"] == tensor.numel()
    assert result["shape"] == list(tensor.shape)
    assert result["dtype"] == str(tensor.dtype).removeprefix("torch.")
    assert result["min"] == reference.min().item()
    assert result["max"] == reference.max().item()
    scale = reference.abs().max().item() + 1.0
    assert result["mean"] == pytest.approx(reference.mean().item(), rel=1e-9, abs=1e-9 * scale)
    assert result["norm"] == pytest.approx(reference.norm().item(), rel=1e-9, abs=1e-9)
    if tensor.numel() > 1:
        assert result["std"] == pytest.approx(reference.std().item(), rel=1e-6, abs=1e-9 * scale)
    assert result["zero_fraction"] == (reference == 0).sum().item() / tensor.numel()
    assert result["nan_count"] == result["inf_count"] == 0


def test_stats_keep_their_digits_when_the_mean_dwarfs_the_spread(small_chunks: None) -> None:
    tensor = 1e6 + torch.arange(20, dtype=torch.float64) * 1e-3
    result = stats.tensor_stats(tensor)
    assert result["std"] == pytest.approx(tensor.std().item(), rel=1e-9)


def test_nan_and_inf_are_counted_and_left_out(small_chunks: None) -> None:
    tensor = torch.tensor([1.0, math.nan, math.inf, -2.0, 0.0, -math.inf, 4.0, math.nan])
    result = stats.tensor_stats(tensor)
    finite = torch.tensor([1.0, -2.0, 0.0, 4.0], dtype=torch.float64)
    assert (result["nan_count"], result["inf_count"], result["finite_count"]) == (2, 2, 4)
    assert (result["min"], result["max"]) == (-2.0, 4.0)
    assert result["mean"] == pytest.approx(finite.mean().item())
    assert result["std"] == pytest.approx(finite.std().item())
    assert result["zero_fraction"] == pytest.approx(1 / 8)


def test_a_tensor_without_finite_values_has_no_figures() -> None:
    result = stats.tensor_stats(torch.full((3,), math.nan))
    assert result["nan_count"] == 3
    assert result["min"] is None
    assert result["mean"] is None
    assert result["norm"] is None


def test_integer_extremes_are_exact_beyond_float_precision() -> None:
    big = 2**60 + 1
    result = stats.tensor_stats(torch.tensor([big, -big, 3], dtype=torch.int64))
    assert (result["min"], result["max"]) == (-big, big)


def test_bool_and_complex_tensors() -> None:
    flags = stats.tensor_stats(torch.tensor([True, False, False, True]))
    assert (flags["min"], flags["max"], flags["mean"], flags["zero_fraction"]) == (0, 1, 0.5, 0.5)
    complex_result = stats.tensor_stats(torch.tensor([3 + 4j, 0j]))
    assert complex_result["of"] == "abs"
    assert (complex_result["max"], complex_result["mean"]) == (5.0, 2.5)


def test_empty_and_meta_tensors() -> None:
    assert stats.tensor_stats(torch.zeros(0, 3))["mean"] is None
    meta = stats.tensor_stats(torch.empty(4, 4, device="meta"))
    assert meta["numel"] == 16
    assert meta["min"] is None
    assert "meta" in meta["note"]


def test_sampled_stats_keep_exact_extremes_and_counts(small_chunks: None) -> None:
    tensor = torch.randn(20_000, generator=torch.Generator().manual_seed(1)) * 2 + 5
    tensor[123] = 100.0
    tensor[456] = math.nan
    tensor[789] = -math.inf
    result = stats.tensor_stats(tensor, exact_limit=1_000, sample_size=4_000)
    assert result["sampled"] is True
    assert result["sample_size"] == 4_000
    assert set(result["estimated"]) == {"mean", "std", "norm", "zero_fraction"}
    finite = tensor[torch.isfinite(tensor)].double()
    assert result["max"] == 100.0
    assert result["min"] == finite.min().item()
    assert (result["nan_count"], result["inf_count"]) == (1, 1)
    assert result["finite_count"] == 19_998
    # Loose bounds: a 4,000-element sample estimates these within a few percent.
    assert result["mean"] == pytest.approx(finite.mean().item(), rel=0.05)
    assert result["std"] == pytest.approx(finite.std().item(), rel=0.1)
    assert result["norm"] == pytest.approx(finite.norm().item(), rel=0.05)


def test_sampled_stats_are_deterministic_given_the_seed() -> None:
    tensor = torch.randn(5_000)
    first = stats.tensor_stats(tensor, exact_limit=100, sample_size=500, seed=3)
    again = stats.tensor_stats(tensor, exact_limit=100, sample_size=500, seed=3)
    other = stats.tensor_stats(tensor, exact_limit=100, sample_size=500, seed=4)
    assert first == again
    assert first["mean"] != other["mean"]


def test_a_sample_as_large_as_the_tensor_means_exact() -> None:
    result = stats.tensor_stats(torch.arange(10.0), exact_limit=2, sample_size=100)
    assert result["sampled"] is False
    assert result["mean"] == 4.5


def test_stats_report_progress_and_stop_when_cancelled(small_chunks: None) -> None:
    seen: list[float] = []
    stats.tensor_stats(torch.randn(50), progress=Progress(lambda f, _text: seen.append(f)))
    assert len(seen) > 3
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        stats.tensor_stats(torch.randn(50), progress=progress)


def test_stats_do_not_change_the_tensor(small_chunks: None) -> None:
    tensor = torch.randn(40, requires_grad=True)
    before = tensor.detach().clone()
    stats.tensor_stats(tensor)
    stats.tensor_stats(tensor, exact_limit=5, sample_size=10)
    assert torch.equal(tensor.detach(), before)


# ---------------------------------------------------------------------- sample
def test_sample_is_deterministic_and_drawn_from_the_tensor() -> None:
    tensor = torch.arange(1000, dtype=torch.float32).reshape(10, 100)
    first = stats.sample(tensor, 50, seed=7)
    assert first.shape == (50,)
    assert first.dtype == torch.float64
    assert torch.equal(first, stats.sample(tensor, 50, seed=7))
    assert not torch.equal(first, stats.sample(tensor, 50, seed=8))
    assert bool(torch.isin(first, tensor.double().reshape(-1)).all())


def test_sample_does_not_depend_on_the_layout() -> None:
    logical = torch.randn(30, 40)
    transposed_storage = logical.t().contiguous().t()  # same values, other strides
    assert not transposed_storage.is_contiguous()
    assert torch.equal(stats.sample(logical, 100, 1), stats.sample(transposed_storage, 100, 1))


def test_sample_returns_a_small_tensor_whole() -> None:
    tensor = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    assert torch.equal(stats.sample(tensor, 6), torch.arange(6, dtype=torch.float64))


def test_sample_is_uniform() -> None:
    tensor = torch.arange(10).repeat_interleave(10_000)  # ten equally common values
    counts = torch.bincount(stats.sample(tensor, 20_000, seed=0).long(), minlength=10)
    # Each value is expected 2,000 times (sd ~ 42); 260 is six standard deviations.
    assert (counts - 2_000).abs().max().item() < 260


def test_sample_rejects_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        stats.sample(torch.ones(3), 0)


# ---------------------------------------------------------------------- histogram
@given(tensor=float_tensors(), bins=st.integers(1, 30), limit=st.integers(1, 80))
def test_histogram_counts_sum_to_the_values_counted(tensor: torch.Tensor, bins: int,
                                                    limit: int) -> None:
    counts, edges, sampled = stats.histogram(tensor, bins=bins, sample_limit=limit)
    assert sampled == (tensor.numel() > limit)
    assert int(counts.sum()) == min(tensor.numel(), limit)
    assert counts.dtype == torch.int64
    assert bool((counts >= 0).all())
    assert edges.numel() == counts.numel() + 1
    assert bool((edges[1:] > edges[:-1]).all())
    if not sampled:
        values = tensor.double().reshape(-1)
        assert edges[0] <= values.min()
        assert values.max() <= edges[-1]


def test_histogram_leaves_out_non_finite_values() -> None:
    counts, _, _ = stats.histogram(torch.tensor([1.0, math.nan, 2.0, math.inf]), bins=4)
    assert int(counts.sum()) == 2
    empty, edges, _ = stats.histogram(torch.full((3,), math.nan))
    assert empty.numel() == 0
    assert edges.numel() == 0


def test_histogram_gives_integers_one_bin_each() -> None:
    counts, edges, _ = stats.histogram(torch.tensor([0, 2, 2, 3, 3, 3]), bins=50)
    assert counts.tolist() == [1, 0, 2, 3]
    assert edges.tolist() == [-0.5, 0.5, 1.5, 2.5, 3.5]


def test_histogram_of_a_constant_has_one_full_bin() -> None:
    counts, edges, _ = stats.histogram(torch.full((9,), 2.5), bins=5)
    assert int(counts.max()) == 9
    assert edges[0] < 2.5 < edges[-1]


def test_histogram_of_a_large_tensor_is_sampled_and_deterministic() -> None:
    tensor = torch.randn(10_000)
    first = stats.histogram(tensor, bins=20, sample_limit=1_000, seed=2)
    assert first.sampled
    assert int(first.counts.sum()) == 1_000
    again = stats.histogram(tensor, bins=20, sample_limit=1_000, seed=2)
    assert torch.equal(first.counts, again.counts)


# ---------------------------------------------------------------------- heatmap
@given(rows=st.integers(1, 40), cols=st.integers(1, 40), side=st.integers(1, 12),
       value=finite_floats)
def test_preview_of_a_constant_matrix_is_constant(rows: int, cols: int, side: int,
                                                  value: float) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stats, "CHUNK", 50)  # several tiles per preview
        image, (row_step, col_step) = stats.heatmap_preview(torch.full((rows, cols), value),
                                                            max_side=side)
    assert image.shape == (math.ceil(rows / row_step), math.ceil(cols / col_step))
    assert max(image.shape) <= side
    assert torch.equal(image, torch.full_like(image, value))


@given(rows=st.integers(1, 30), cols=st.integers(1, 30), side=st.integers(1, 8))
def test_preview_pixels_are_block_means(rows: int, cols: int, side: int) -> None:
    matrix = torch.randn(rows, cols, generator=torch.Generator().manual_seed(rows * 31 + cols))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stats, "CHUNK", 13)
        image, (row_step, col_step) = stats.heatmap_preview(matrix, max_side=side)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            block = matrix[i * row_step:(i + 1) * row_step, j * col_step:(j + 1) * col_step]
            assert image[i, j].item() == pytest.approx(block.mean().item(), abs=1e-5)


def test_a_small_matrix_is_its_own_preview() -> None:
    matrix = torch.randn(5, 7, dtype=torch.float16)
    image, scale = stats.heatmap_preview(matrix, max_side=10)
    assert scale == (1, 1)
    assert torch.equal(image, matrix.float())


def test_preview_can_be_cancelled(small_chunks: None) -> None:
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        stats.heatmap_preview(torch.randn(30, 30), max_side=4, progress=progress)


def test_preview_rejects_other_ranks() -> None:
    with pytest.raises(ValueError, match="2-D"):
        stats.heatmap_preview(torch.ones(2, 2, 2))


def test_matrix_view_reshapes_or_slices() -> None:
    tensor = torch.arange(24).reshape(2, 3, 4)
    assert stats.matrix_view(tensor).shape == (2, 12)
    assert torch.equal(stats.matrix_view(tensor, "slice", (1,)), tensor[1])
    assert torch.equal(stats.matrix_view(tensor, "slice"), tensor[0])
    assert stats.matrix_view(torch.arange(5)).shape == (1, 5)
    with pytest.raises(ValueError, match="out of range for dimension 0"):
        stats.matrix_view(tensor, "slice", (2,))
    with pytest.raises(ValueError, match="0-D"):
        stats.matrix_view(torch.tensor(1.0))
    with pytest.raises(ValueError, match="mode"):
        stats.matrix_view(tensor, "diagonal")


# ---------------------------------------------------------------------- filter grid
@pytest.mark.parametrize("shape", [(16, 1, 3, 3), (8, 3, 5, 5), (6, 4, 1, 1), (70, 20, 3, 2)])
def test_filter_grid_puts_every_kernel_value_where_the_layout_says(shape) -> None:
    weight = torch.randn(shape)
    image = stats.filter_grid(weight)
    layout = stats.filter_grid_layout(shape)
    assert (layout.filters, layout.channels) == (min(shape[0], 64), min(shape[1], 16))
    found = 0
    for row in range(image.shape[0]):
        for col in range(image.shape[1]):
            where = stats.filter_grid_position(layout, row, col)
            if where is None:
                assert math.isnan(image[row, col].item())
            else:
                assert image[row, col].item() == weight[where].item()
                found += 1
    assert found == layout.filters * layout.channels * shape[2] * shape[3]


def test_filter_grid_is_roughly_square_for_single_channel_kernels() -> None:
    image = stats.filter_grid(torch.randn(16, 1, 3, 3))
    assert image.shape == (15, 15)


def test_filter_grid_rejects_other_ranks() -> None:
    with pytest.raises(ValueError, match="4-D"):
        stats.filter_grid(torch.ones(3, 3))


# ---------------------------------------------------------------------- overview
def test_overview_gives_one_bar_per_layer_weight() -> None:
    session = Session(seeded(SmallCNN))
    norms = stats.layer_overview(session, "norm")
    names = [name for name, _ in norms]
    assert names == ["features.0.weight", "features.1.weight", "features.3.weight",
                     "features.4.weight", "classifier.2.weight"]
    for name, value in norms:
        assert value == pytest.approx(session.document.tensor(name).detach().double().norm().item())
    stds = dict(stats.layer_overview(session, "std"))
    assert stds["features.0.weight"] == pytest.approx(
        session.document.tensor("features.0.weight").detach().double().std().item())
    every = [name for name, _ in stats.layer_overview(session, which="all")]
    assert "features.0.bias" in every
    assert "features.1.running_mean" not in every


def test_overview_lists_a_tied_tensor_once() -> None:
    session = Session(seeded(TiedLM))
    names = [name for name, _ in stats.layer_overview(session, which="all")]
    assert "embed.weight" in names
    assert "lm_head.weight" not in names


def test_overview_in_checkpoint_mode_and_after_an_edit() -> None:
    model = seeded(MLP)
    session = Session(checkpoint={name: tensor.detach().clone()
                                  for name, tensor in model.state_dict().items()})
    assert [name for name, _ in stats.layer_overview(session)] == ["fc1.weight", "fc2.weight"]
    session.apply({"op": "set", "target": "fc1.weight", "value": 0.0})
    assert dict(stats.layer_overview(session))["fc1.weight"] == 0.0
    session.undo()
    assert dict(stats.layer_overview(session))["fc1.weight"] > 0.0


def test_overview_rejects_unknown_measures_and_can_be_cancelled() -> None:
    session = Session(seeded(MLP))
    with pytest.raises(ValueError, match="measure"):
        stats.layer_overview(session, "mean")
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        stats.layer_overview(session, progress=progress)


def test_stats_module_imports_no_qt() -> None:
    code = ("import sys, engine.stats; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'gui')];"
            "sys.exit(1 if bad else 0)")
    root = str(stats.__file__).rsplit("/engine/", 1)[0]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


def test_overview_reads_a_lazy_checkpoint_without_keeping_its_tensors(tmp_path) -> None:
    from safetensors.torch import save_file

    tensors = {"a.weight": torch.randn(4, 3), "a.bias": torch.randn(4),
               "b.weight": torch.randn(2, 4)}
    save_file(tensors, str(tmp_path / "m.safetensors"))
    session = Session.open(tmp_path / "m.safetensors")
    overview = dict(stats.layer_overview(session, "norm"))
    assert set(overview) == {"a.weight", "b.weight"}
    assert overview["b.weight"] == pytest.approx(tensors["b.weight"].double().norm().item())
    assert not any(slot.loaded for slot in session.checkpoint.entries.values())


def test_sample_runs_reads_runs_of_neighbours() -> None:
    tensor = torch.arange(10_000, dtype=torch.float32)
    values = stats.sample_runs(tensor, 1_000, seed=3, run=100)
    assert values.shape == (1_000,)
    runs = values.reshape(10, 100)
    assert bool((runs[:, 1:] - runs[:, :-1] == 1).all())  # each run is contiguous
    assert torch.equal(values, stats.sample_runs(tensor, 1_000, seed=3, run=100))
    assert not torch.equal(values, stats.sample_runs(tensor, 1_000, seed=4, run=100))


def test_sample_runs_falls_back_to_a_uniform_sample() -> None:
    matrix = torch.randn(200, 300).t()  # not contiguous
    assert torch.equal(stats.sample_runs(matrix, 500, seed=1), stats.sample(matrix, 500, 1))
    small = torch.arange(5.0)
    assert torch.equal(stats.sample_runs(small, 50), small.double())


def test_a_quick_histogram_counts_its_runs() -> None:
    counts, _, sampled = stats.histogram(torch.randn(50_000), sample_limit=1_024, runs=True)
    assert sampled
    assert int(counts.sum()) == 1_024
