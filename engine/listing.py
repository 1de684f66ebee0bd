"""The listing of a document's tensors: what `inspect` prints and `inspect --json` returns.

JSON form (documented in docs/inspect.md):
`{"mode", "source", "tensors": [{"name", "shape", "dtype", "numel", "requires_grad",
"kind", "tie_group"}], "tie_groups": [[names]], "module_ties": [[paths]], "totals": {...}}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .session import Session


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32."""
    return str(dtype).removeprefix("torch.")


def listing(session: Session) -> dict[str, Any]:
    """Every stored tensor with its shape, dtype, size, trainability and tie group."""
    groups = session.tie_groups()
    group_of = {name: index for index, group in enumerate(groups) for name in group}
    tensors = []
    seen: set[int] = set()
    totals = {"tensors": 0, "stored_tensors": 0, "parameters": 0, "trainable_parameters": 0,
              "buffers": 0, "bytes": 0, "bytes_by_dtype": {}}
    if session.model is not None:
        rows = [(entry.name, entry.tensor, entry.kind) for entry in session.tensor_entries()
                if entry.kind == "parameter"
                or entry.leaf not in entry.owner._non_persistent_buffers_set]
        for name, tensor, kind in rows:
            stored = id(tensor) not in seen
            seen.add(id(tensor))
            tensors.append(_row(name, tuple(tensor.shape), tensor.dtype,
                                tensor.requires_grad if kind == "parameter" else False,
                                kind, group_of.get(name)))
            if stored:
                _count(totals, tuple(tensor.shape), tensor.dtype, kind, tensor.requires_grad)
    else:
        assert session.checkpoint is not None
        for name, slot in session.checkpoint.entries.items():
            stored = id(slot) not in seen
            seen.add(id(slot))
            tensors.append(_row(name, slot.shape, slot.dtype, None, "tensor", group_of.get(name)))
            if stored:
                _count(totals, slot.shape, slot.dtype, "tensor", None)
    totals["tensors"] = len(tensors)
    result: dict[str, Any] = {"mode": session.mode, "source": session.source or None,
                              "tensors": tensors, "tie_groups": groups, "totals": totals}
    if session.model is not None:
        from .edits.ties import module_tie_groups

        result["module_ties"] = module_tie_groups(session.model)
    return result


def _row(name: str, shape: tuple[int, ...], dtype: torch.dtype, requires_grad: bool | None,
         kind: str, tie_group: int | None) -> dict[str, Any]:
    numel = 1
    for size in shape:
        numel *= size
    return {"name": name, "shape": list(shape), "dtype": dtype_name(dtype), "numel": numel,
            "requires_grad": requires_grad, "kind": kind, "tie_group": tie_group}


def _count(totals: dict[str, Any], shape: tuple[int, ...], dtype: torch.dtype, kind: str,
           requires_grad: bool | None) -> None:
    numel = 1
    for size in shape:
        numel *= size
    nbytes = numel * dtype.itemsize
    totals["stored_tensors"] += 1
    totals["bytes"] += nbytes
    by_dtype = totals["bytes_by_dtype"]
    by_dtype[dtype_name(dtype)] = by_dtype.get(dtype_name(dtype), 0) + nbytes
    if kind == "buffer":
        totals["buffers"] += numel
    else:
        totals["parameters"] += numel
        if requires_grad:
            totals["trainable_parameters"] += numel
