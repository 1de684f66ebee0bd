"""Rows of a document's tensors and the totals over them, counted one way for every caller.

The CLI's listing, the tree's module and group facts, the inspector's summary and the
status bar's totals all count unique tensors (a tied tensor once), elements, trainable
elements, buffers and bytes by dtype from these rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

PARAMETER, BUFFER, TENSOR = "parameter", "buffer", "tensor"


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32."""
    return str(dtype).removeprefix("torch.")


def shape_text(shape: Iterable[int]) -> str:
    """'(3, 4)' for a shape; '()' for a scalar."""
    return "(" + ", ".join(str(size) for size in shape) + ")"


def numel(shape: Iterable[int]) -> int:
    """The number of elements of a tensor of this shape."""
    return math.prod(shape)


@dataclass(frozen=True, slots=True)  # slotted: a listing of a million rows is 1M of these
class TensorRow:
    """One name of a document's tensors, with what a listing or a save needs.

    Attributes
    ----------
    name : the dotted name
    kind : "parameter" or "buffer" (model), "tensor" (checkpoint)
    shape, dtype : read without loading any data
    requires_grad : of a parameter; None for buffers and checkpoint tensors
    key : equal for names tied to one stored tensor (ties count once)
    persistent : whether a state dict holds it (False for non-persistent buffers)
    device : "cpu", "cuda:0"...; None when not read yet (a lazy checkpoint tensor)
    load : the tensor (read from its file on first use)
    unread_source : where the unchanged bytes are on disk, when never read
    file_source : where the bytes were read from, read or not (None: made in memory)
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    requires_grad: bool | None
    key: int
    persistent: bool
    device: str | None
    load: Callable[[], torch.Tensor] = field(repr=False, compare=False)
    unread_source: Any = field(default=None, repr=False, compare=False)
    file_source: Any = field(default=None, repr=False, compare=False)

    @property
    def numel(self) -> int:
        return numel(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass
class Totals:
    """Counts over the unique tensors of some rows.

    Attributes
    ----------
    names : rows counted (tied names each)
    stored : unique tensors
    parameters : elements of parameters (every tensor of a checkpoint)
    trainable / frozen : elements of parameters with requires_grad True / False
    buffers : elements of buffers
    bytes : bytes of every unique tensor
    by_dtype : dtype name -> [elements, bytes], every unique tensor
    parameter_dtypes : dtype names of the parameters, in first-seen order
    devices : devices of the tensors already in memory
    unread : unique tensors not read from their file yet
    """

    names: int = 0
    stored: int = 0
    parameters: int = 0
    trainable: int = 0
    frozen: int = 0
    buffers: int = 0
    bytes: int = 0
    by_dtype: dict[str, list[int]] = field(default_factory=dict)
    parameter_dtypes: list[str] = field(default_factory=list)
    devices: set[str] = field(default_factory=set)
    unread: int = 0

    @property
    def trainable_state(self) -> str:
        """'yes', 'no', 'partial', or '' when there is no trainable/frozen parameter."""
        if self.trainable + self.frozen == 0:
            return ""
        if self.frozen == 0:
            return "yes"
        return "no" if self.trainable == 0 else "partial"

    @property
    def bytes_by_dtype(self) -> dict[str, int]:
        return {name: nbytes for name, (_, nbytes) in self.by_dtype.items()}


@dataclass
class Summary:
    """What a document says about a module, a group of names, or the whole of it.

    Attributes
    ----------
    title : "The whole model", "The whole checkpoint", or the path
    type_name : the module's class, or "group of tensors"
    totals : counts over the unique tensors below
    mode : "train" or "eval" for a module; None for a group of names
    tied_with : other paths sharing this module
    """

    title: str
    type_name: str
    totals: Totals
    mode: str | None = None
    tied_with: list[str] = field(default_factory=list)


def count(rows: Iterable[TensorRow]) -> Totals:
    """The totals of `rows`, each tied tensor counted once."""
    counter = RowCounter()
    for row in rows:
        counter.add(row)
    return counter.totals()


class RowCounter:
    """`count`, a row at a time, for rows that are made and dropped one by one."""

    def __init__(self) -> None:
        self._totals = Totals()
        self._seen: set[int] = set()
        self._dtypes: dict[str, None] = {}

    def add(self, row: TensorRow) -> None:
        """Count one row (a tied tensor's second name counts as a name only)."""
        totals = self._totals
        totals.names += 1
        if row.key in self._seen:
            return
        self._seen.add(row.key)
        elements, nbytes = row.numel, row.nbytes
        totals.stored += 1
        totals.bytes += nbytes
        entry = totals.by_dtype.setdefault(dtype_name(row.dtype), [0, 0])
        entry[0] += elements
        entry[1] += nbytes
        if row.device is None:
            totals.unread += 1
        else:
            totals.devices.add(row.device)
        if row.kind == BUFFER:
            totals.buffers += elements
            return
        totals.parameters += elements
        self._dtypes[dtype_name(row.dtype)] = None
        if row.requires_grad is True:
            totals.trainable += elements
        elif row.requires_grad is False:
            totals.frozen += elements

    def totals(self) -> Totals:
        """The totals of the rows added so far."""
        self._totals.parameter_dtypes = list(self._dtypes)
        return self._totals
