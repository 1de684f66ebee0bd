"""Histograms with a bin count taken from the data, and before/after overlays on shared bins.

Qt-free: the GUI's plots draw what this computes.

A `Snapshot` keeps what a histogram of a tensor counted (every element of a small
tensor, or a fixed uniform sample of a big one) and, up to `COPY_LIMIT` elements, a
copy of the whole tensor. After an edit, `overlay` counts the snapshot from before
and a snapshot taken now *on the same bin edges* (equal-width bins over the union of
both ranges), so a change of one element moves one element between bins, not the
whole distribution; it also gives how many elements changed and by how much at
most: exactly when both copies are whole, estimated from the shared sample otherwise.

The bin count follows numpy's 'auto' rule (the more bins of the Freedman-Diaconis
and Sturges rules, at most twice the square root of the count), capped; integer and
bool tensors with few distinct values get one bin per integer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .progress import Progress, report

#: the most bins a histogram gets (a plot a few hundred pixels wide shows no more)
MAX_BINS = 100
#: tensors with at most this many elements are also copied whole, for exact change counts
COPY_LIMIT = 1 << 22
#: elements gathered per step when sampling (a memory-mapped file may page in each one)
_PIECE = 1 << 14
#: the most values the quartiles of the bin rule are taken from (a strided subsample)
_QUARTILE_VALUES = 1 << 16


def plot_values(values: torch.Tensor) -> torch.Tensor:
    """`values` as float64 on the CPU, for counting (complex: magnitudes; bool: 0 and 1)."""
    values = values.detach()
    if values.is_complex():
        values = values.abs()
    return values.to(device="cpu", dtype=torch.float64).reshape(-1)


def choose_bins(values: torch.Tensor, span: float | None = None,
                cap: int = MAX_BINS) -> int:
    """The number of equal-width bins for finite float64 `values` (numpy's 'auto' rule).

    The bin width is the smaller of the Sturges width (range / (log2 n + 1)) and the
    Freedman-Diaconis width (2 IQR / n^(1/3)), the latter never under half the
    square-root rule's (range / sqrt n), as numpy 2 has it; the count covers `span`
    (default: the values' own range, as when two histograms share bins), at least 1
    and at most `cap`.
    """
    count = values.numel()
    if count < 2:
        return 1
    low, high = (float(v) for v in torch.aminmax(values))
    ptp = high - low
    span = ptp if span is None else span
    if not ptp > 0 or not math.isfinite(span):
        return 1
    q1, q3 = _quartiles(values[:: max(1, count // _QUARTILE_VALUES)])
    freedman_diaconis = 2.0 * (q3 - q1) * count ** (-1.0 / 3.0)
    sturges = ptp / (math.log2(count) + 1.0)
    width = min(max(freedman_diaconis, ptp / math.sqrt(count) / 2), sturges)
    return max(1, min(cap, math.ceil(span / width)))


def _quartiles(values: torch.Tensor) -> tuple[float, float]:
    """The 25th and 75th percentiles, interpolated linearly as numpy does."""
    ordered = torch.sort(values).values
    last = ordered.numel() - 1

    def at(share: float) -> float:
        place = share * last
        low = math.floor(place)
        high = min(low + 1, last)
        return float(ordered[low] + (ordered[high] - ordered[low]) * (place - low))

    return at(0.25), at(0.75)


def bin_edges(samples: list[torch.Tensor], integral: bool, cap: int = MAX_BINS) -> torch.Tensor:
    """Equal-width edges over the union of the finite values' ranges (float64).

    The bin count comes from the last sample (the current state), over the union's
    span. Integers with at most `cap` distinct values in range get one bin per
    integer, centred on it. No finite value at all gives no edges.
    """
    finite = [values[torch.isfinite(values)] for values in samples]
    present = [values for values in finite if values.numel()]
    if not present:
        return torch.zeros(0, dtype=torch.float64)
    low = min(float(values.min()) for values in present)
    high = max(float(values.max()) for values in present)
    if integral and high - low + 1 <= cap:
        bins = int(high - low) + 1
        low, high = low - 0.5, high + 0.5
    elif low == high:
        bins, low, high = 1, low - 0.5, high + 0.5
    else:
        basis = finite[-1] if finite[-1].numel() else present[0]
        bins = choose_bins(basis, span=high - low, cap=cap)
    return torch.linspace(low, high, bins + 1, dtype=torch.float64)


def count_on(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Counts of float64 `values` in the bins of `edges` (int64), as numpy counts them:
    [a, b) for every bin but the last, which is [a, b]; values outside and NaN are left
    out.

    Like numpy: the bin from arithmetic on equal widths, then corrected by one where
    rounding put a value on the wrong side of an edge.
    """
    bins = max(edges.numel() - 1, 0)
    if bins == 0:
        return torch.zeros(0, dtype=torch.int64)
    low, high = float(edges[0]), float(edges[-1])
    inside = values[(values >= low) & (values <= high)]
    where = ((inside - low) * (bins / (high - low))).to(torch.int64).clamp_(0, bins - 1)
    where -= (inside < edges[where]).to(torch.int64)
    where += ((inside >= edges[where + 1]) & (where != bins - 1)).to(torch.int64)
    return torch.bincount(where, minlength=bins).to(torch.int64)


@dataclass(frozen=True)
class Snapshot:
    """What a histogram of a tensor counted, and enough to tell later what changed.

    Attributes
    ----------
    shape, dtype : the tensor's
    sample : the elements counted, as float64 (all of them, or the values at `coords`)
    coords : per-dimension indices of a uniform sample (None: every element counted)
    whole : a copy of every element (row-major, the tensor's dtype), up to COPY_LIMIT
    """

    shape: tuple[int, ...]
    dtype: torch.dtype
    sample: torch.Tensor
    coords: tuple[torch.Tensor, ...] | None
    whole: torch.Tensor | None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def sampled(self) -> bool:
        """Whether the counts come from a sample rather than every element."""
        return self.coords is not None

    @property
    def integral(self) -> bool:
        return not self.dtype.is_floating_point and not self.dtype.is_complex


def take_snapshot(tensor: torch.Tensor, sample_limit: int, *, like: Snapshot | None = None,
                  copy_limit: int = COPY_LIMIT, seed: int = 0,
                  progress: Progress | None = None) -> Snapshot:
    """Snapshot `tensor` (not changed): every element up to `sample_limit`, else a uniform
    sample of `sample_limit` elements (with replacement, seeded); a whole copy too up to
    `copy_limit` elements. With `like` of the same shape, its sample's places are reused,
    so the two can be compared element by element.
    """
    with torch.no_grad():
        tensor = tensor.detach()
        shape = tuple(tensor.shape)
        numel = tensor.numel()
        whole = tensor.reshape(-1).to("cpu", copy=True) if numel <= copy_limit else None
        if numel <= sample_limit:
            source = whole if whole is not None else tensor.reshape(-1)
            return Snapshot(shape, tensor.dtype, plot_values(source), None, whole)
        if like is not None and like.shape == shape and like.coords is not None:
            coords = like.coords
        else:
            generator = torch.Generator().manual_seed(seed)
            coords = tuple(torch.randint(0, size, (sample_limit,), generator=generator)
                           for size in shape)
        source = whole.view(shape) if whole is not None else tensor
        pieces = []
        for start in range(0, sample_limit, _PIECE):
            place = tuple(coord[start:start + _PIECE].to(source.device) for coord in coords)
            pieces.append(plot_values(source[place]))
            report(progress, min(start + _PIECE, sample_limit) / sample_limit, "sample")
        return Snapshot(shape, tensor.dtype, torch.cat(pieces), coords, whole)


@dataclass(frozen=True)
class Histogram:
    """Counts (int64) over edges (float64, one more than counts) of one snapshot."""

    counts: torch.Tensor
    edges: torch.Tensor
    sampled: bool


def histogram(snapshot: Snapshot, cap: int = MAX_BINS) -> Histogram:
    """The histogram of a snapshot's counted elements, bins from the data."""
    edges = bin_edges([snapshot.sample], snapshot.integral, cap)
    return Histogram(count_on(snapshot.sample, edges), edges, snapshot.sampled)


def histogram_of_values(values: torch.Tensor, integral: bool, cap: int = MAX_BINS) -> Histogram:
    """The histogram of float64 `values` (a quick look drawn before a snapshot)."""
    edges = bin_edges([values], integral, cap)
    return Histogram(count_on(values, edges), edges, True)


@dataclass(frozen=True)
class Overlay:
    """Before and after on the same bins, and what changed between them.

    Attributes
    ----------
    edges : the shared edges (the union of both ranges)
    before, after : counts of each on those edges
    changed : elements that differ (NaN equals NaN); estimated when `estimated`;
        None when the shape changed (nothing to pair)
    largest : the largest |after - before| of a changed element with both finite
        (None when none changed, or only non-finite values changed)
    compared : elements compared (all, or the shared sample)
    estimated : `changed` and `largest` come from the shared sample, not every element
    """

    edges: torch.Tensor
    before: torch.Tensor
    after: torch.Tensor
    changed: int | None
    largest: float | None
    compared: int
    estimated: bool

    def summary(self, numel: int) -> str:
        """One line: how many elements changed, and the largest change."""
        if self.changed is None:
            return "Shape changed: no element to compare"
        if self.estimated and not self.changed:
            return (f"No change found in a sample of {self.compared:,} of {numel:,} elements "
                    "(too many to compare each one)")
        if self.estimated:
            share = self.changed / max(self.compared, 1)
            text = (f"Changed: about {round(share * numel):,} of {numel:,} elements "
                    f"({self.changed:,} of a sample of {self.compared:,})")
        else:
            text = f"Changed: {self.changed:,} of {numel:,} elements"
        if self.largest is not None:
            text += (" · largest change in the sample " if self.estimated
                     else " · largest change ") + f"{self.largest:.6g}"
        return text


def overlay(before: Snapshot, after: Snapshot, cap: int = MAX_BINS) -> Overlay:
    """Count `before` and `after` on shared bins and measure what changed."""
    edges = bin_edges([before.sample, after.sample], before.integral and after.integral, cap)
    counts_before, counts_after = count_on(before.sample, edges), count_on(after.sample, edges)
    if before.shape != after.shape:
        return Overlay(edges, counts_before, counts_after, None, None, 0, False)
    if before.whole is not None and after.whole is not None:
        old, new, estimated = before.whole, after.whole, False
    else:
        old, new, estimated = before.sample, after.sample, True
    changed, largest = _changes(old, new)
    return Overlay(edges, counts_before, counts_after, changed, largest, old.numel(), estimated)


def _changes(old: torch.Tensor, new: torch.Tensor) -> tuple[int, float | None]:
    """(elements that differ, the largest finite |difference| among them)."""
    if old.dtype != new.dtype:
        old, new = plot_values(old), plot_values(new)
    differ = old != new
    if old.dtype.is_floating_point or old.dtype.is_complex:
        differ &= ~(torch.isnan(old) & torch.isnan(new))
    changed = int(differ.sum())
    if not changed:
        return 0, None
    a, b = old[differ], new[differ]
    if a.is_complex():
        delta = (b.to(torch.complex128) - a.to(torch.complex128)).abs()
    else:
        delta = (b.to(torch.float64) - a.to(torch.float64)).abs()
    delta = delta[torch.isfinite(delta)]
    return changed, (float(delta.max()) if delta.numel() else None)
