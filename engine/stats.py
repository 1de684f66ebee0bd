"""Tensor statistics, samples, histograms and image previews for the inspector and plots.

Pure functions over tensors (the layer overview also reads a Session), without Qt.
They read a tensor in bounded chunks, so a multi-GiB tensor never gets a full-size
float copy, and a tensor above a size limit is summarised from a uniform random
sample, which every result says. Given the same seed, every result is the same.

Conventions
-----------
- min, max, mean, std and norm are over the finite elements; NaN and ±inf are counted
  separately (`nan_count`, `inf_count`), so one NaN does not hide the rest.
- std uses Bessel's correction, as `torch.std` does by default.
- Integer and bool tensors are summarised as numbers; complex tensors by the
  magnitude of their elements (the result says `"of": "abs"`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F

from . import views
from .document.rows import dtype_name
from .progress import Progress, report

if TYPE_CHECKING:
    from .session import Session

#: tensors up to this many elements get exact statistics by default
EXACT_LIMIT = 16 * 2**20
#: elements a sampled summary is computed from by default
SAMPLE_SIZE = 2**20
#: elements a sampled histogram counts by default: 2,600 per bin of 100 is plenty for
#: the eye, and gathering scattered elements of a huge tensor is what costs
HISTOGRAM_SAMPLE = 2**18
#: elements read (and converted) per step; bounds the memory a summary needs
CHUNK = 4 * 2**20
#: elements gathered between two cancellation checks when sampling
SAMPLE_PIECE = 2**14
#: neighbours per run of `sample_runs`: a 1 KiB stretch of float32, within one page
RUN_LENGTH = 256
#: the largest side of a heatmap preview, in pixels
PREVIEW_SIDE = 1024
#: an exact pass over a view's elements is made only up to this many times its storage
VIEW_PASS_FACTOR = 64
#: what a layer overview can plot
MEASURES = ("norm", "std")


class Histogram(NamedTuple):
    """Counts per bin (int64), the bins' edges (float64, one more than counts), and
    whether the counts come from a random sample rather than every element."""

    counts: torch.Tensor
    edges: torch.Tensor
    sampled: bool


# ---------------------------------------------------------------------- helpers
def _work_dtype(device: torch.device) -> torch.dtype:
    # MPS has no float64; everything else accumulates in float64.
    return torch.float32 if device.type == "mps" else torch.float64


def _real(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor as real numbers to summarise: magnitudes of complex, 0/1 for bool."""
    if tensor.is_complex():
        return tensor.abs()
    if tensor.dtype == torch.bool:
        return tensor.to(torch.uint8)
    return tensor


def _chunks(tensor: torch.Tensor, size: int | None = None):
    """Yield the elements of `tensor` in row-major order as 1-D pieces of at most `size`
    (default `CHUNK`).

    Views of contiguous tensors are free; a non-contiguous tensor is copied one piece
    at a time (along its first dimension, recursively), never as a whole.
    """
    size = size or CHUNK
    if tensor.dim() == 0:
        yield tensor.reshape(1)
        return
    if tensor.is_contiguous():
        flat = tensor.view(-1)
        for start in range(0, flat.numel(), size):
            yield flat[start:start + size]
        return
    row = tensor[0].numel() if tensor.shape[0] else 0
    if row == 0:
        return
    rows = max(1, size // row)
    for start in range(0, tensor.shape[0], rows):
        piece = tensor[start:start + rows]
        if piece.numel() <= size:
            yield piece.reshape(-1)
        else:
            yield from _chunks(piece[0], size)


def _is_float(dtype: torch.dtype) -> bool:
    return dtype.is_floating_point


def _no_data(tensor: torch.Tensor) -> bool:
    return tensor.device.type == "meta"


# ---------------------------------------------------------------------- sampling
def sample(tensor: torch.Tensor, k: int = SAMPLE_SIZE, seed: int = 0, *,
           progress: Progress | None = None) -> torch.Tensor:
    """Draw a uniform random sample of a tensor's elements as a 1-D float64 tensor.

    Each element is drawn independently and uniformly (with replacement), by drawing
    one coordinate per dimension, so only the `k` chosen elements are ever read and
    converted; the tensor's layout does not change which elements are chosen. A
    tensor with at most `k` elements is returned whole, in row-major order.

    Parameters
    ----------
    tensor : any real, bool or complex tensor (complex: magnitudes)
    k : how many elements to draw
    seed : the same seed gives the same sample
    progress : reports the fraction gathered; raises `Cancelled` when cancelled (the
        gather goes in pieces, as reading a memory-mapped file's pages can take long)

    Returns
    -------
    A 1-D tensor of float64 (float32 on MPS) on the tensor's device.
    """
    if k < 1:
        raise ValueError(f"sample: k must be at least 1, got {k}")
    work = _work_dtype(tensor.device)
    if tensor.numel() <= k:
        return _real(tensor.reshape(-1)).to(work)
    generator = torch.Generator().manual_seed(seed)
    coords = [torch.randint(0, size, (k,), generator=generator).to(tensor.device)
              for size in tensor.shape]
    values = torch.empty(k, dtype=work, device=tensor.device)
    for start in range(0, k, SAMPLE_PIECE):
        piece = tuple(coord[start:start + SAMPLE_PIECE] for coord in coords)
        values[start:start + SAMPLE_PIECE] = _real(tensor[piece])
        report(progress, min(start + SAMPLE_PIECE, k) / k, "sample")
    return values


def sample_runs(tensor: torch.Tensor, k: int, seed: int = 0, *,
                run: int = RUN_LENGTH) -> torch.Tensor:
    """Draw about `k` elements as runs of `run` neighbours (row-major) at uniformly random
    places, as a 1-D float64 tensor: a quick first look, not an independent sample.

    A run reads one or two memory pages where `sample` reads up to `run`, so on a
    memory-mapped file that is not in the page cache a first picture needs `k / run`
    disk reads instead of `k`. Neighbouring weights are often alike (one row of a
    matrix), so use the result only until a `sample` arrives. A tensor that is not
    contiguous falls back to `sample`; one with at most `k` elements is returned whole.
    """
    if k < 1 or run < 1:
        raise ValueError(f"sample_runs: k and run must be at least 1, got {k} and {run}")
    numel = tensor.numel()
    if numel <= k or not tensor.is_contiguous():
        return sample(tensor, k, seed)
    run = min(run, k)
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, numel - run + 1, (max(1, k // run),), generator=generator)
    index = (starts[:, None] + torch.arange(run)).reshape(-1).to(tensor.device)
    return _real(torch.take(tensor, index)).to(_work_dtype(tensor.device))


# ---------------------------------------------------------------------- statistics
class _Moments:
    """Running count, sum, shifted sums and extremes of finite values (Chan et al.).

    Sums are shifted by the first chunk's mean so that the variance does not lose its
    digits to cancellation when the mean is large against the spread.
    """

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.squares = 0.0
        self.shift: float | None = None
        self.shifted = 0.0
        self.shifted_squares = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, values: torch.Tensor) -> None:
        """Add finite float values; `values` is used as scratch space (shifted in place)."""
        n = values.numel()
        if n == 0:
            return
        total = float(values.sum())
        self.squares += float(torch.dot(values, values))
        low, high = torch.aminmax(values)
        self.low = min(self.low, float(low))
        self.high = max(self.high, float(high))
        if self.shift is None:
            self.shift = total / n
        # In place: a fresh tensor per chunk would cost a page-faulting allocation.
        centred = values.sub_(self.shift)
        self.count += n
        self.total += total
        self.shifted += float(centred.sum())
        self.shifted_squares += float(torch.dot(centred, centred))

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def std(self) -> float | None:
        if self.count < 2:
            return None if self.count == 0 else math.nan
        variance = (self.shifted_squares - self.shifted**2 / self.count) / (self.count - 1)
        return math.sqrt(max(variance, 0.0))


def _split_finite(chunk: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Drop NaN and ±inf from `values` (float of `chunk`); count what was dropped."""
    # A finite sum proves every element finite (float64 cannot overflow on the sums
    # of float32/float16 chunks), which spares the masks in the common case.
    if not _is_float(chunk.dtype) or math.isfinite(float(values.sum())):
        return values, 0, 0
    nan_count = int(torch.isnan(values).sum())
    inf_count = int(torch.isinf(values).sum())
    return values[torch.isfinite(values)], nan_count, inf_count


def tensor_stats(
    tensor: torch.Tensor,
    *,
    exact_limit: int | None = EXACT_LIMIT,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Summarise a tensor: shape, dtype, device, min, max, mean, std, norm, zeros, NaN, inf.

    Up to `exact_limit` elements (or `sample_size`, if larger; always when the limit
    is None) every figure is exact, computed chunk by chunk in float64 so that memory
    stays bounded. Above it, min, max and the NaN and inf counts are still exact (one
    cheap pass in the tensor's own dtype), while mean, std, norm and the share of
    zeros are estimated from a uniform sample of `sample_size` elements; `sampled` is
    then True and `estimated` lists those keys.

    Parameters
    ----------
    tensor : the tensor to summarise (not changed)
    exact_limit : the most elements summarised exactly; None for always exact
    sample_size : elements of the sample above the limit
    seed : seed of the sample
    progress : reports the fraction done; raises `Cancelled` when cancelled

    Returns
    -------
    A JSON-ready dict with keys shape, dtype, device, numel, min, max, mean, std,
    norm, zero_fraction, nan_count, inf_count, finite_count, sampled, sample_size,
    estimated and, for complex tensors, "of": "abs". Figures over no finite element
    are None; a tensor without data (on the meta device) has a `note` instead.
    """
    result: dict[str, Any] = {
        "shape": list(tensor.shape), "dtype": dtype_name(tensor.dtype),
        "device": str(tensor.device), "numel": tensor.numel(),
        "min": None, "max": None, "mean": None, "std": None, "norm": None,
        "zero_fraction": None, "nan_count": 0, "inf_count": 0, "finite_count": 0,
        "sampled": False, "sample_size": None, "estimated": [],
    }
    if _no_data(tensor):
        result["note"] = "no data: the tensor is on the meta device"
        return result
    if tensor.numel() == 0:
        return result
    if tensor.is_complex():
        result["of"] = "abs"
    if views.is_expanded(tensor):
        base, repeat = views.broadcast_base(tensor)
        if repeat > 1:
            # Along a stride-0 dimension every element repeats: summarise the storage.
            inner = tensor_stats(base, exact_limit=exact_limit, sample_size=sample_size,
                                 seed=seed, progress=progress)
            return _repeated(inner, result, repeat)
    with torch.no_grad():
        # A sample as large as the tensor would be the tensor: count it exactly.
        if exact_limit is None or tensor.numel() <= max(exact_limit, sample_size):
            _exact_stats(tensor.detach(), result, progress)
        else:
            # An overlapping view far larger than its storage: even one exact pass over
            # its elements would take hours, so its extremes come from the sample too.
            overlapping = tensor.numel() > VIEW_PASS_FACTOR * max(
                views.storage_elements(tensor), 1)
            _sampled_stats(tensor.detach(), result, sample_size, seed, progress,
                           exact_extremes=not overlapping)
    report(progress, 1.0, "statistics")
    return result


def _repeated(inner: dict[str, Any], result: dict[str, Any], repeat: int) -> dict[str, Any]:
    """The statistics of a tensor whose elements are those of `inner`'s, each `repeat`
    times (a broadcast view)."""
    base_finite = inner["finite_count"]
    total_finite = base_finite * repeat
    std = inner["std"]
    if inner["mean"] is not None and total_finite > 1:
        # Bessel's correction is over the tensor's own count, not the storage's.
        population = (std ** 2 * (base_finite - 1) / base_finite
                      if std is not None and base_finite > 1 else 0.0)
        std = math.sqrt(population * total_finite / (total_finite - 1))
    result.update({key: inner[key] for key in ("min", "max", "mean", "zero_fraction",
                                               "sampled", "sample_size", "estimated")})
    result.update(
        std=std, norm=inner["norm"] * math.sqrt(repeat) if inner["norm"] is not None else None,
        nan_count=inner["nan_count"] * repeat, inf_count=inner["inf_count"] * repeat,
        finite_count=total_finite,
        note=f"a broadcast view: each of its {inner['numel']:,} stored values repeats "
             f"{repeat:,} times")
    return result


def _exact_stats(tensor: torch.Tensor, result: dict[str, Any],
                 progress: Progress | None) -> None:
    moments = _Moments()
    zeros = nan_count = inf_count = 0
    work = _work_dtype(tensor.device)
    numel = tensor.numel()
    buffer = torch.empty(min(numel, CHUNK), dtype=work, device=tensor.device)
    low_exact = high_exact = None  # integer extremes kept in their own dtype: int64 > 2**53
    done = 0
    for raw in _chunks(tensor):
        chunk = _real(raw)  # per chunk: a whole-tensor abs() would copy it all
        values = buffer[:chunk.numel()]
        values.copy_(chunk)
        zeros += chunk.numel() - int(torch.count_nonzero(chunk))
        finite, nans, infs = _split_finite(chunk, values)
        nan_count += nans
        inf_count += infs
        moments.add(finite)
        if not _is_float(chunk.dtype):
            low, high = torch.aminmax(chunk)
            low_exact = int(low) if low_exact is None else min(low_exact, int(low))
            high_exact = int(high) if high_exact is None else max(high_exact, int(high))
        done += chunk.numel()
        report(progress, done / numel, "statistics")
    result.update(
        min=low_exact if low_exact is not None else _or_none(moments.low, moments.count),
        max=high_exact if high_exact is not None else _or_none(moments.high, moments.count),
        mean=moments.mean(), std=moments.std(),
        norm=math.sqrt(moments.squares) if moments.count else None,
        zero_fraction=zeros / numel, nan_count=nan_count, inf_count=inf_count,
        finite_count=moments.count,
    )


def _or_none(value: float, count: int) -> float | None:
    return value if count else None


def _sampled_stats(tensor: torch.Tensor, result: dict[str, Any], sample_size: int, seed: int,
                   progress: Progress | None, *, exact_extremes: bool = True) -> None:
    numel = tensor.numel()
    values = sample(tensor, sample_size, seed)
    if exact_extremes:
        low, high, nan_count, inf_count = _extremes(tensor, progress)
    else:
        low, high, nan_count, inf_count = _sample_extremes(values, numel)
    zeros = int((values == 0).sum())
    finite = values[torch.isfinite(values)]
    moments = _Moments()
    moments.add(finite)
    finite_count = numel - nan_count - inf_count
    # The norm is sqrt(sum of squares): estimated as finite_count * mean square.
    norm = (math.sqrt(moments.squares / moments.count * finite_count)
            if moments.count else None)
    estimated = ["mean", "std", "norm", "zero_fraction"]
    if not exact_extremes:
        estimated += ["min", "max", "nan_count", "inf_count", "finite_count"]
    result.update(
        min=low, max=high, mean=moments.mean(), std=moments.std(), norm=norm,
        zero_fraction=zeros / values.numel(), nan_count=nan_count, inf_count=inf_count,
        finite_count=finite_count, sampled=True, sample_size=values.numel(),
        estimated=estimated,
    )


def _sample_extremes(values: torch.Tensor, numel: int) -> tuple[Any, Any, int, int]:
    """Min, max and NaN/inf counts estimated from a sample (scaled to `numel`)."""
    finite = values[torch.isfinite(values)]
    low = float(finite.min()) if finite.numel() else None
    high = float(finite.max()) if finite.numel() else None
    scale = numel / max(values.numel(), 1)
    return (low, high, round(int(torch.isnan(values).sum()) * scale),
            round(int(torch.isinf(values).sum()) * scale))


def _extremes(tensor: torch.Tensor,
              progress: Progress | None) -> tuple[Any, Any, int, int]:
    """Exact min and max of the finite elements, and the NaN and inf counts, in one pass.

    `aminmax` in the tensor's own dtype reads each element once and copies nothing;
    it returns NaN or ±inf for a chunk that holds any, and only those chunks are then
    counted and filtered.
    """
    low: Any = None
    high: Any = None
    nan_count = inf_count = 0
    numel = tensor.numel()
    done = 0
    for raw in _chunks(tensor):
        chunk = _real(raw)
        chunk_low, chunk_high = (float(v) if _is_float(chunk.dtype) else int(v)
                                 for v in torch.aminmax(chunk))
        if _is_float(chunk.dtype) and not (math.isfinite(chunk_low)
                                           and math.isfinite(chunk_high)):
            nan_count += int(torch.isnan(chunk).sum())
            inf_count += int(torch.isinf(chunk).sum())
            finite = chunk[torch.isfinite(chunk)]
            if finite.numel() == 0:
                chunk_low = chunk_high = None
            else:
                chunk_low, chunk_high = (float(v) for v in torch.aminmax(finite))
        if chunk_low is not None:
            low = chunk_low if low is None else min(low, chunk_low)
            high = chunk_high if high is None else max(high, chunk_high)
        done += chunk.numel()
        report(progress, 0.9 * done / numel, "statistics")
    return low, high, nan_count, inf_count


# ---------------------------------------------------------------------- histogram
def histogram(
    tensor: torch.Tensor,
    bins: int = 100,
    sample_limit: int = HISTOGRAM_SAMPLE,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    runs: bool = False,
) -> Histogram:
    """Count a tensor's finite values in equal-width bins between their min and max.

    Up to `sample_limit` elements every element is counted; above it, a uniform
    random sample of `sample_limit` elements is, and `sampled` is True. Integer and
    bool tensors with fewer distinct possible values than `bins` get one bin per
    integer, centred on it. A tensor with no finite value gives empty counts.

    Parameters
    ----------
    tensor : the tensor (not changed)
    bins : the number of bins for float data
    sample_limit : the most elements counted; also the sample size above it
    seed : seed of the sample
    progress : reports the fraction sampled; raises `Cancelled` when cancelled
    runs : draw the sample as runs of neighbours (`sample_runs`): far fewer pages of
        a memory-mapped file to read, for a quick first look only

    Returns
    -------
    Histogram(counts, edges, sampled); counts sum to the number of finite values
    counted (the sample's, when sampled).
    """
    if bins < 1:
        raise ValueError(f"histogram: bins must be at least 1, got {bins}")
    sampled = tensor.numel() > sample_limit
    if _no_data(tensor) or tensor.numel() == 0:
        return Histogram(torch.zeros(0, dtype=torch.int64),
                         torch.zeros(0, dtype=torch.float64), False)
    with torch.no_grad():
        if runs:
            values = sample_runs(tensor.detach(), sample_limit, seed).cpu()
        else:
            values = sample(tensor.detach(), sample_limit, seed, progress=progress).cpu()
    values = torch.masked_select(values, torch.isfinite(values))
    if values.numel() == 0:
        return Histogram(torch.zeros(0, dtype=torch.int64),
                         torch.zeros(0, dtype=torch.float64), sampled)
    low, high = (float(v) for v in torch.aminmax(values))
    integral = not tensor.dtype.is_floating_point and not tensor.is_complex()
    if integral and high - low + 1 <= bins:
        bins = int(high - low) + 1
        low, high = low - 0.5, high + 0.5
    elif low == high:
        low, high = low - 0.5, high + 0.5
    counts = torch.histc(values, bins=bins, min=low, max=high).round().to(torch.int64)
    edges = torch.linspace(low, high, bins + 1, dtype=torch.float64)
    return Histogram(counts, edges, sampled)


# ---------------------------------------------------------------------- images
def matrix_view(tensor: torch.Tensor, mode: str = "reshape",
                index: tuple[int, ...] = ()) -> torch.Tensor:
    """A 2-D view of an N-D tensor for a heatmap.

    Parameters
    ----------
    tensor : a tensor of rank 1 or more
    mode : "reshape": rows are the first dimension, columns everything else
        (a 1-D tensor is one row); "slice": the last two dimensions, at `index`
        along the leading ones
    index : for "slice", one index per leading dimension (missing ones are 0)

    Raises
    ------
    ValueError : an unknown mode, a 0-D tensor or an index out of range
    """
    if tensor.dim() == 0:
        raise ValueError("heatmap: a 0-D tensor has no rows or columns")
    if tensor.dim() == 1:
        return tensor.reshape(1, -1)
    if mode == "reshape":
        if views.is_expanded(tensor):
            try:  # a reshape that copies a broadcast view would materialize all of it
                return tensor.view(tensor.shape[0], -1)
            except RuntimeError:
                raise ValueError("heatmap: this broadcast view cannot be shown as one "
                                 "matrix without copying it; use slice mode") from None
        return tensor.reshape(tensor.shape[0], -1)
    if mode != "slice":
        raise ValueError(f"heatmap: mode must be 'reshape' or 'slice', not {mode!r}")
    leading = tensor.shape[:-2]
    index = tuple(index) + (0,) * (len(leading) - len(index))
    if len(index) != len(leading):
        raise ValueError(f"heatmap: {len(index)} indices for {len(leading)} leading dimensions")
    for dim, (position, size) in enumerate(zip(index, leading, strict=True)):
        if not 0 <= position < size:
            raise ValueError(f"heatmap: index {position} out of range for dimension {dim} "
                             f"of size {size}")
    return tensor[index]


def heatmap_preview(tensor2d: torch.Tensor, max_side: int = PREVIEW_SIDE, *,
                    progress: Progress | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """Downsample a matrix by block means so that neither side exceeds `max_side`.

    Computed once per tensor, tile by tile (each tile converted to float64 on its
    own, so memory stays bounded and a constant block stays exactly constant), so a
    view can zoom and pan over the result without reading the tensor again. A block
    at the bottom or right edge that is cut short is the mean of the elements it has.
    A block holding a NaN is NaN.

    Parameters
    ----------
    tensor2d : a 2-D tensor (see `matrix_view` for others)
    max_side : the largest number of rows or columns of the result
    progress : reports the fraction done; raises `Cancelled` when cancelled

    Returns
    -------
    (image, (row_step, column_step)): a float32 CPU tensor of shape
    (ceil(rows / row_step), ceil(columns / column_step)); pixel (i, j) covers rows
    i*row_step ... and columns j*column_step ... of the matrix.
    """
    if tensor2d.dim() != 2:
        raise ValueError(f"heatmap: expected a 2-D tensor, got {tensor2d.dim()}-D")
    if max_side < 1:
        raise ValueError(f"heatmap: max_side must be at least 1, got {max_side}")
    rows, cols = tensor2d.shape
    row_step, col_step = max(1, math.ceil(rows / max_side)), max(1, math.ceil(cols / max_side))
    if views.is_expanded(tensor2d):
        return _view_preview(tensor2d, max_side, (row_step, col_step), progress)
    with torch.no_grad():
        numbers = tensor2d.detach()
        if row_step == col_step == 1:
            return _real(numbers).to(torch.float32).cpu(), (1, 1)
        out_rows, out_cols = math.ceil(rows / row_step), math.ceil(cols / col_step)
        image = torch.empty(out_rows, out_cols, dtype=torch.float32)
        work = _work_dtype(numbers.device)
        block = row_step * col_step
        tile_cols = max(1, min(out_cols, CHUNK // block))  # blocks per tile, across
        tile_rows = max(1, CHUNK // (block * tile_cols))    # blocks per tile, down
        buffer = torch.empty(min(rows, tile_rows * row_step) * min(cols, tile_cols * col_step),
                             dtype=work, device=numbers.device)
        for out_row in range(0, out_rows, tile_rows):
            top = out_row * row_step
            for out_col in range(0, out_cols, tile_cols):
                left = out_col * col_step
                tile = numbers[top:top + tile_rows * row_step, left:left + tile_cols * col_step]
                # One reused buffer: a fresh 32 MB tensor per tile costs more in page
                # faults than the pooling itself.
                values = buffer[:tile.numel()].view(tile.shape)
                values.copy_(_real(tile))
                # ceil_mode with no padding divides a cut-short edge block by the
                # number of elements it holds, which is the mean we want. float64 sums
                # keep a constant block exactly constant.
                pooled = F.avg_pool2d(values[None, None],
                                      (row_step, col_step), ceil_mode=True)[0, 0]
                image[out_row:out_row + pooled.shape[0],
                      out_col:out_col + pooled.shape[1]] = pooled.to(torch.float32).cpu()
            report(progress, min(out_row + tile_rows, out_rows) / out_rows, "heatmap")
    return image, (row_step, col_step)


class GridLayout(NamedTuple):
    """Where each kernel of a filter grid lies: `columns` cells per row of the grid,
    each cell `cell_height` x `cell_width` pixels (gap included) holding the first
    `channels` input channels side by side, for the first `filters` output filters."""

    filters: int
    channels: int
    columns: int
    cell_height: int
    cell_width: int
    kernel_height: int
    kernel_width: int
    gap: int


def _view_preview(tensor2d: torch.Tensor, max_side: int, steps: tuple[int, int],
                  progress: Progress | None) -> tuple[torch.Tensor, tuple[int, int]]:
    """The preview of a view larger than its storage, in time proportional to the storage.

    Block means along a broadcast dimension are the values themselves, so the preview of
    the broadcast base is repeated; any other overlapping view is shown by the element at
    each block's corner (a block mean would read every element)."""
    rows, cols = tensor2d.shape
    out_rows, out_cols = math.ceil(rows / steps[0]), math.ceil(cols / steps[1])
    base, repeat = views.broadcast_base(tensor2d)
    if repeat > 1:
        image, _ = heatmap_preview(base, max_side, progress=progress)
        return image.expand(out_rows, out_cols).contiguous() if image.shape != (
            out_rows, out_cols) else image, steps
    corners = tensor2d.detach()[::steps[0], ::steps[1]]
    return _real(corners).to(torch.float32).cpu().contiguous(), steps


def filter_grid_layout(shape: tuple[int, ...], *, max_filters: int = 64,
                       max_channels: int = 16, gap: int = 1,
                       aspect: float = 1.5) -> GridLayout:
    """Plan the grid of a conv weight of `shape` (out, in, height, width).

    Each output filter becomes a cell holding its input channels left to right; the
    cells wrap into the number of columns that brings the picture closest to
    `aspect` (width / height) while leaving few cells of the last row empty.
    """
    if len(shape) != 4:
        raise ValueError(f"filter grid: expected a 4-D conv weight, got shape {tuple(shape)}")
    out_channels, in_channels, height, width = shape
    filters, channels = min(out_channels, max_filters), min(in_channels, max_channels)
    cell_height, cell_width = height + gap, channels * (width + gap)

    def badness(columns: int) -> float:
        rows = math.ceil(filters / columns)
        shape_error = abs(math.log(columns * cell_width / (rows * cell_height) / aspect))
        return shape_error + (rows * columns - filters) / filters

    columns = min(range(1, max(filters, 1) + 1), key=badness) if filters else 1
    return GridLayout(filters, channels, columns, cell_height, cell_width, height, width, gap)


def filter_grid(weight4d: torch.Tensor, *, max_filters: int = 64, max_channels: int = 16,
                gap: int = 1) -> torch.Tensor:
    """Lay out the kernels of a conv weight side by side as one image.

    Row-major over output filters (see `filter_grid_layout`), values as they are (no
    per-kernel scaling, so kernels compare), NaN in the gaps between kernels. Only
    the first `max_filters` filters and `max_channels` input channels are shown.

    Returns
    -------
    A 2-D float32 CPU tensor.
    """
    layout = filter_grid_layout(tuple(weight4d.shape), max_filters=max_filters,
                                max_channels=max_channels, gap=gap)
    if 0 in weight4d.shape:
        raise ValueError(f"filter grid: the weight {tuple(weight4d.shape)} has no kernels")
    with torch.no_grad():
        kernels = weight4d.detach()[:layout.filters, :layout.channels]
        kernels = _real(kernels).to(torch.float32).cpu()
    filters, channels, kh, kw = kernels.shape
    rows = math.ceil(filters / layout.columns)
    # Every kernel padded with a NaN gap on its right and bottom, cells padded up to a
    # full last row, then one reshape: no Python loop over thousands of kernels.
    cells = torch.full((rows * layout.columns, channels, kh + gap, kw + gap), math.nan,
                       dtype=torch.float32)
    cells[:filters, :, :kh, :kw] = kernels
    cells = cells.permute(0, 2, 1, 3).reshape(rows, layout.columns, kh + gap,
                                              channels * (kw + gap))
    image = cells.permute(0, 2, 1, 3).reshape(rows * (kh + gap),
                                              layout.columns * channels * (kw + gap))
    return image[:image.shape[0] - gap, :image.shape[1] - gap].contiguous()


def filter_grid_position(layout: GridLayout, row: int,
                         column: int) -> tuple[int, int, int, int] | None:
    """The (filter, channel, y, x) under pixel (row, column) of a filter grid, or None
    for a gap or outside."""
    if row < 0 or column < 0:
        return None
    grid_row, y = divmod(row, layout.cell_height)
    grid_col, rest = divmod(column, layout.cell_width)
    channel, x = divmod(rest, layout.kernel_width + layout.gap)
    number = grid_row * layout.columns + grid_col
    if (grid_col >= layout.columns or number >= layout.filters or y >= layout.kernel_height
            or x >= layout.kernel_width or channel >= layout.channels):
        return None
    return number, channel, y, x


# ---------------------------------------------------------------------- overview
Reader = Callable[[], torch.Tensor]


def overview_names(session: Session, which: str = "weights") -> list[str]:
    """The tensors a layer overview plots, once each (ties under their first name).

    "weights": float parameters named `weight` (in checkpoint mode: names ending in
    "weight"), one per layer; when there is none, every float tensor. "all": every
    float parameter (checkpoint mode: tensor). Buffers are left out in model mode.
    """
    if which not in ("weights", "all"):
        raise ValueError(f"overview: 'which' must be 'weights' or 'all', not {which!r}")
    seen: set[int] = set()
    candidates: list[str] = []
    for row in session.document.rows():
        if (row.kind != "buffer" and row.key not in seen
                and (row.dtype.is_floating_point or row.dtype.is_complex)):
            seen.add(row.key)
            candidates.append(row.name)
    if which == "all":
        return candidates
    weights = [name for name in candidates if name.rsplit(".", 1)[-1].endswith("weight")]
    return weights or candidates


def overview_sources(session: Session, which: str = "weights") -> list[tuple[str, Reader]]:
    """The overview's tensors as (name, reader) pairs whose readers may run in another thread.

    Call this in the thread that owns the session. A model's tensors are resolved here;
    a checkpoint tensor that was not read yet is read by its reader without being
    kept, so a background overview never races an edit over who loads a tensor (and
    does not make a whole checkpoint resident).
    """
    rows = {row.name: row for row in session.document.rows()}
    sources: list[tuple[str, Reader]] = []
    for name in overview_names(session, which):
        row = rows[name]
        load = getattr(row.unread_source, "load", None)
        if callable(load):
            sources.append((name, load))
            continue
        sources.append((name, _constant_reader(row.load())))
    return sources


def _constant_reader(tensor: torch.Tensor) -> Reader:
    return lambda: tensor


def measure_tensors(
    sources: list[tuple[str, Reader]],
    measure: str = "norm",
    *,
    exact_limit: int | None = 2**20,
    sample_size: int = 2**18,
    progress: Progress | None = None,
) -> list[tuple[str, float]]:
    """Compute one figure ("norm" or "std") per (name, reader) pair; see `layer_overview`."""
    if measure not in MEASURES:
        raise ValueError(f"overview: measure must be one of {', '.join(MEASURES)}, "
                         f"not {measure!r}")
    result: list[tuple[str, float]] = []
    for number, (name, read) in enumerate(sources):
        report(progress, number / max(len(sources), 1), f"overview: {name}")
        stats = tensor_stats(read(), exact_limit=exact_limit, sample_size=sample_size)
        value = stats[measure]
        result.append((name, math.nan if value is None else float(value)))
    report(progress, 1.0, "overview")
    return result


def layer_overview(
    session: Session,
    measure: str = "norm",
    *,
    which: str = "weights",
    exact_limit: int | None = 2**20,
    sample_size: int = 2**18,
    progress: Progress | None = None,
) -> list[tuple[str, float]]:
    """One figure per layer (its weight's norm or std), to spot an odd layer at a glance.

    Parameters
    ----------
    session : the document; read, not changed
    measure : "norm" or "std"
    which : see `overview_names`
    exact_limit, sample_size : as for `tensor_stats`; an overview needs no more than
        a few digits, so larger tensors are sampled by default
    progress : reports the fraction done; raises `Cancelled` when cancelled

    Returns
    -------
    (name, value) pairs in document order; NaN where a tensor has no finite element
    (or, for std, fewer than two).
    """
    if measure not in MEASURES:
        raise ValueError(f"overview: measure must be one of {', '.join(MEASURES)}, "
                         f"not {measure!r}")
    return measure_tensors(overview_sources(session, which), measure,
                           exact_limit=exact_limit, sample_size=sample_size,
                           progress=progress)
