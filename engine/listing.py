"""The listing of a document's tensors: what `inspect` prints and `inspect --json` returns.

JSON form (documented in docs/inspect.md):
`{"mode", "source", "tensors": [{"name", "shape", "dtype", "numel", "requires_grad",
"kind", "tie_group"}], "tie_groups": [[names]], "module_ties": [[paths]], "totals": {...}}`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .collection import collection_paused
from .document.rows import BUFFER, RowCounter, count, dtype_name

if TYPE_CHECKING:
    from .session import Session

__all__ = ["dtype_name", "listing", "listing_json"]

#: tensors encoded per piece of `listing_json`
PIECE_ROWS = 10_000


def listing(session: Session, *, lazy: bool = False) -> dict[str, Any]:
    """Every stored tensor with its shape, dtype, size, trainability and tie group.

    With `lazy`, "tensors" is an iterable that makes each entry when it is read (and
    anew on every pass) instead of a list: a listing of a million tensors is printed
    without holding a million entries.
    """
    with collection_paused():
        if lazy:
            return _lazy_listing(session)
        return _listing(session)


class _LazyEntries:
    """The "tensors" of a lazy listing: iterable any number of times."""

    def __init__(self, document: Any, group_of: dict[str, int]) -> None:
        self._document, self._group_of = document, group_of

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self._document.iter_rows(persistent_only=True):
            yield _entry(row, self._group_of)


def _lazy_listing(session: Session) -> dict[str, Any]:
    document = session.document
    groups = document.tie_groups()
    group_of = {name: index for index, group in enumerate(groups) for name in group}
    return {"mode": document.mode, "source": document.source or None,
            "tensors": _LazyEntries(document, group_of),
            **_rest(document, count(document.iter_rows(persistent_only=True)), groups)}


def listing_json(session: Session) -> Iterator[str]:
    """`json.dumps(listing(session))`, in pieces: the text of the listing of a million
    tensors is never held whole, nor a dict per tensor (the rows are encoded ten
    thousand at a time)."""
    with collection_paused():
        document = session.document
        groups = document.tie_groups()
        group_of = {name: index for index, group in enumerate(groups) for name in group}
        yield (f'{{"mode": {json.dumps(document.mode)}, '
               f'"source": {json.dumps(document.source or None)}, "tensors": [')
        counter = RowCounter()
        separator = ""
        rows = document.iter_rows(persistent_only=True)
        while piece := list(itertools.islice(rows, PIECE_ROWS)):
            for row in piece:
                counter.add(row)
            yield separator + json.dumps([_entry(row, group_of) for row in piece])[1:-1]
            separator = ", "
        yield "], " + json.dumps(_rest(document, counter.totals(), groups))[1:]


def _entry(row: Any, group_of: dict[str, int]) -> dict[str, Any]:
    return {"name": row.name, "shape": list(row.shape), "dtype": dtype_name(row.dtype),
            "numel": row.numel,
            "requires_grad": False if row.kind == BUFFER else row.requires_grad,
            "kind": row.kind, "tie_group": group_of.get(row.name)}


def _rest(document: Any, found: Any, groups: list[list[str]]) -> dict[str, Any]:
    totals = {"tensors": found.names, "stored_tensors": found.stored,
              "parameters": found.parameters, "trainable_parameters": found.trainable,
              "buffers": found.buffers, "bytes": found.bytes,
              "bytes_by_dtype": found.bytes_by_dtype}
    rest: dict[str, Any] = {"tie_groups": groups, "totals": totals}
    if document.has_modules:
        rest["module_ties"] = document.module_tie_groups()
    return rest


def _listing(session: Session) -> dict[str, Any]:
    document = session.document
    groups = document.tie_groups()
    group_of = {name: index for index, group in enumerate(groups) for name in group}
    rows = document.rows(persistent_only=True)
    tensors = [_entry(row, group_of) for row in rows]
    return {"mode": document.mode, "source": document.source or None, "tensors": tensors,
            **_rest(document, count(rows), groups)}
