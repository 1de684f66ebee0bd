"""Compare two documents tensor by tensor: added, removed, renamed, reshaped, recast, changed.

A tensor counts as renamed when a name only in A and a name only in B hold the same
bytes (same shape and dtype). Values are compared bit for bit (so NaNs in the same
place are equal, and 0.0 and -0.0 differ); for changed tensors the report gives the
count of changed elements and the largest absolute difference. Tensors are compared a
chunk at a time, and tensors of a file that were not read yet are read a chunk at a
time too (never kept), so a diff of two big files needs little memory.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy
import torch

from . import views
from .io.dtypes import dtype_name
from .io.sources import TensorSource
from .progress import Progress, report
from .stats import _chunks as row_chunks

if TYPE_CHECKING:
    from .session import Session

#: elements compared at a time
CHUNK_ELEMENTS = 16 * 2**20
#: a view is compared element by element only up to this many times its storage
VIEW_WORK_FACTOR = 64
_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


class _Side:
    """Names of one document, with shape and dtype known without reading data."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # What a state dict of the document holds (non-persistent buffers left out).
        self._rows = {row.name: row for row in session.document.rows(persistent_only=True)}
        self.names = list(self._rows)

    def meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        row = self._rows[name]
        return row.shape, row.dtype

    def in_memory(self, name: str) -> torch.Tensor | None:
        """The tensor, unless it is still only in a file (then it is dense there)."""
        row = self._rows[name]
        if isinstance(row.unread_source, TensorSource):
            return None
        return row.load().detach()

    def chunks(self, name: str) -> Iterator[torch.Tensor]:
        """The tensor's elements, flat, CHUNK_ELEMENTS at a time (read from disk when the
        tensor was not read yet, and not kept)."""
        row = self._rows[name]
        if isinstance(row.unread_source, TensorSource):
            yield from _file_chunks(row.unread_source)
            return
        yield from _tensor_chunks(row.load().detach())


def _tensor_chunks(tensor: torch.Tensor) -> Iterator[torch.Tensor]:
    """The elements of any tensor (a view too) in row-major order, CHUNK_ELEMENTS at a
    time; a non-contiguous tensor is copied a piece at a time, never whole."""
    if tensor.is_contiguous():
        flat = tensor.reshape(-1)
        for start in range(0, flat.numel(), CHUNK_ELEMENTS):
            yield flat[start:start + CHUNK_ELEMENTS].cpu()  # a model may be on a GPU
        return
    pending: list[torch.Tensor] = []
    count = 0
    for piece in row_chunks(tensor, CHUNK_ELEMENTS):
        pending.append(piece.cpu())
        count += piece.numel()
        while count >= CHUNK_ELEMENTS:
            joined = torch.cat(pending)
            yield joined[:CHUNK_ELEMENTS]
            rest = joined[CHUNK_ELEMENTS:]
            pending, count = ([rest] if rest.numel() else []), rest.numel()
    if count:
        yield torch.cat(pending)


def _file_chunks(source: TensorSource) -> Iterator[torch.Tensor]:
    size = source.dtype.itemsize
    numel = source.nbytes // size
    for start in range(0, numel, CHUNK_ELEMENTS):
        count = min(CHUNK_ELEMENTS, numel - start)
        raw = torch.empty(count * size, dtype=torch.uint8)
        source.file.read_into(memoryview(raw.numpy()), source.offset + start * size)
        yield raw.view(source.dtype)


def diff_sessions(a: Session, b: Session, *, progress: Progress | None = None,
                  labels: tuple[str, str] = ("a", "b")) -> dict[str, Any]:
    """Compare the tensors of two sessions (nothing is changed).

    Returns
    -------
    `{"a", "b", "added": [names], "removed": [names], "renamed": [{"from", "to"}],
    "shape_changed": [{"name", "a_shape", "b_shape", "a_dtype", "b_dtype"}],
    "dtype_changed": [{"name", "a_dtype", "b_dtype", "changed_elements",
    "max_abs_diff"}], "changed": [{"name", "numel", "changed_elements",
    "max_abs_diff"}], "unchanged": count, "identical": bool}`; `max_abs_diff` is None
    when NaNs or infinities make it undefined.
    """
    left, right = _Side(a), _Side(b)
    right_names = set(right.names)
    left_names = set(left.names)
    common = [name for name in left.names if name in right_names]
    removed = [name for name in left.names if name not in right_names]
    added = [name for name in right.names if name not in left_names]
    result: dict[str, Any] = {"a": labels[0], "b": labels[1], "added": [], "removed": [],
                              "renamed": [], "shape_changed": [], "dtype_changed": [],
                              "changed": [], "unchanged": 0}
    total = max(len(common) + len(removed) + len(added), 1)
    for position, name in enumerate(common):
        report(progress, position / total, f"Comparing {name}")
        _compare(result, name, left, right)
    renamed = _renames(left, right, removed, added, progress, len(common) / total)
    result["renamed"] = [{"from": old, "to": new} for old, new in renamed.items()]
    result["removed"] = [name for name in removed if name not in renamed]
    moved_to = set(renamed.values())
    result["added"] = [name for name in added if name not in moved_to]
    result["identical"] = not any(result[key] for key in (
        "added", "removed", "renamed", "shape_changed", "dtype_changed", "changed"))
    report(progress, 1.0, "Compared")
    return result


def diff_files(path_a: str | Path, path_b: str | Path, *, trust: bool = False,
               progress: Progress | None = None, **options: Any) -> dict[str, Any]:
    """Open two files or folders (checkpoint mode) and compare them; see `diff_sessions`.

    Raises
    ------
    FileError : either file cannot be opened
    """
    from .session import Session

    a = Session.open(path_a, trust=trust, **options)
    b = Session.open(path_b, trust=trust, **options)
    return diff_sessions(a, b, progress=progress, labels=(str(path_a), str(path_b)))


def _compare(result: dict[str, Any], name: str, left: _Side, right: _Side) -> None:
    (a_shape, a_dtype), (b_shape, b_dtype) = left.meta(name), right.meta(name)
    if a_shape != b_shape:
        result["shape_changed"].append({"name": name, "a_shape": list(a_shape),
                                        "b_shape": list(b_shape), "a_dtype": dtype_name(a_dtype),
                                        "b_dtype": dtype_name(b_dtype)})
        return
    changed, max_diff = _values_of(name, left, right)
    if changed is None:
        result["changed"].append({"name": name, "numel": math.prod(a_shape),
                                  "changed_elements": None, "max_abs_diff": None,
                                  "note": "views over small storages that differ in layout; "
                                          "not compared element by element"})
        return
    if a_dtype != b_dtype:
        result["dtype_changed"].append({"name": name, "a_dtype": dtype_name(a_dtype),
                                        "b_dtype": dtype_name(b_dtype),
                                        "changed_elements": changed, "max_abs_diff": max_diff})
    elif changed:
        numel = math.prod(a_shape)
        result["changed"].append({"name": name, "numel": numel, "changed_elements": changed,
                                  "max_abs_diff": max_diff})
    else:
        result["unchanged"] += 1


def _values_of(name: str, left: _Side, right: _Side) -> tuple[int | None, float | None]:
    """Changed elements and the largest |a - b| of one tensor, in time proportional to
    what is stored: broadcast dimensions both share are compared once, and a view over a
    small storage is compared by its storage when the layouts agree (equal storage, equal
    view: equal). None when neither works and the view is far larger than its storage."""
    a, b = left.in_memory(name), right.in_memory(name)
    if not ((a is not None and views.is_expanded(a)) or (b is not None and views.is_expanded(b))):
        return _value_diff(left.chunks(name), right.chunks(name))
    if a is None or b is None:
        # The other side is dense in its file: comparing costs what reading it costs.
        return _value_diff(left.chunks(name), right.chunks(name))
    if views.same_view_and_bytes(a, b):
        return 0, 0.0
    base_a, base_b, repeat = views.shared_broadcast(a, b)
    stored = max(views.storage_elements(a), views.storage_elements(b), 1)
    if base_a.numel() > max(VIEW_WORK_FACTOR * stored, CHUNK_ELEMENTS):
        return None, None
    changed, largest = _value_diff(_tensor_chunks(base_a), _tensor_chunks(base_b))
    return changed * repeat, largest


def _value_diff(a: Iterator[torch.Tensor],
                b: Iterator[torch.Tensor]) -> tuple[int, float | None]:
    """Changed elements (bitwise when the dtypes agree) and the largest |a - b|, from
    matching chunks of two tensors of one shape."""
    changed = 0
    largest = 0.0
    defined = True
    for part_a, part_b in zip(a, b, strict=True):
        if part_a.dtype == part_b.dtype:
            integer = _SAME_SIZE_INT[part_a.element_size()]
            bits_a = part_a.contiguous().view(integer)
            bits_b = part_b.contiguous().view(integer)
            if bits_a.device.type == "cpu" and numpy.array_equal(bits_a.numpy(), bits_b.numpy()):
                continue  # the common case, at memory speed (numpy's is ~3x torch.equal's)
            differs = bits_a != bits_b
        else:
            differs = _wide(part_a) != _wide(part_b)
        count = int(differs.sum())
        if not count:
            continue
        changed += count
        gap = (_wide(part_a[differs]) - _wide(part_b[differs])).abs()
        if not bool(torch.isfinite(gap).all()):
            defined = False
            gap = gap[torch.isfinite(gap)]
        if gap.numel():
            largest = max(largest, float(gap.max()))
    return changed, (largest if defined else None)


def _wide(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.dtype.is_complex:
        return tensor.to(torch.complex128)
    return tensor.to(torch.float64)


def _renames(left: _Side, right: _Side, removed: list[str], added: list[str],
             progress: Progress | None, start: float) -> dict[str, str]:
    """Match names only in A to names only in B with the same bytes."""
    if not removed or not added:
        return {}
    wanted = {right.meta(name) for name in added}
    by_key: dict[tuple[Any, ...], list[str]] = {}
    for name in added:
        by_key.setdefault(_key(right, name), []).append(name)
    result: dict[str, str] = {}
    for position, name in enumerate(removed):
        report(progress, start + (1 - start) * position / len(removed), f"Matching {name}")
        if left.meta(name) not in wanted:
            continue
        candidates = by_key.get(_key(left, name))
        if candidates:
            result[name] = candidates.pop(0)
    return result


def _key(side: _Side, name: str) -> tuple[Any, ...]:
    shape, dtype = side.meta(name)
    tensor = side.in_memory(name)
    if tensor is not None and views.is_expanded(tensor):
        # A view over a small storage: its layout and stored bytes identify its values.
        base, _ = views.broadcast_base(tensor)
        return shape, dtype, tensor.stride(), _digest(_tensor_chunks(base))
    return shape, dtype, _digest(side.chunks(name))


def _digest(chunks: Iterator[torch.Tensor]) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for chunk in chunks:
        if chunk.numel():
            raw = chunk.contiguous()
            raw = raw.view(torch.uint8) if raw.dtype != torch.bool else raw.to(torch.uint8)
            hasher.update(raw.numpy())
    return hasher.hexdigest()
