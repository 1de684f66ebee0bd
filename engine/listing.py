"""The listing of a document's tensors: what `inspect` prints and `inspect --json` returns.

JSON form (documented in docs/inspect.md):
`{"mode", "source", "tensors": [{"name", "shape", "dtype", "numel", "requires_grad",
"kind", "tie_group"}], "tie_groups": [[names]], "module_ties": [[paths]], "totals": {...}}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .collection import collection_paused
from .document.rows import count, dtype_name

if TYPE_CHECKING:
    from .session import Session

__all__ = ["dtype_name", "listing"]


def listing(session: Session) -> dict[str, Any]:
    """Every stored tensor with its shape, dtype, size, trainability and tie group."""
    with collection_paused():
        return _listing(session)


def _listing(session: Session) -> dict[str, Any]:
    document = session.document
    groups = document.tie_groups()
    group_of = {name: index for index, group in enumerate(groups) for name in group}
    rows = document.rows(persistent_only=True)
    tensors = [{"name": row.name, "shape": list(row.shape), "dtype": dtype_name(row.dtype),
                "numel": row.numel,
                "requires_grad": None if row.kind == "tensor" else bool(row.requires_grad),
                "kind": row.kind, "tie_group": group_of.get(row.name)} for row in rows]
    found = count(rows)
    totals = {"tensors": found.names, "stored_tensors": found.stored,
              "parameters": found.parameters, "trainable_parameters": found.trainable,
              "buffers": found.buffers, "bytes": found.bytes,
              "bytes_by_dtype": found.bytes_by_dtype}
    result: dict[str, Any] = {"mode": document.mode, "source": document.source or None,
                              "tensors": tensors, "tie_groups": groups, "totals": totals}
    if document.has_modules:
        result["module_ties"] = document.module_tie_groups()
    return result
