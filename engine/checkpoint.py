"""Checkpoint mode: tensors by dotted name, without a module, read lazily.

A `Slot` holds one stored tensor. Several names that share one Slot are tied: an
edit through either name changes both, and a save writes the tensor once. A Slot
whose tensor has not been read yet knows its shape and dtype from the file's
header, so a listing of a huge file reads no tensor data.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

Loader = Callable[[], torch.Tensor]
#: held only while a Slot makes its own lock
_LOCK_CREATION = threading.Lock()


class Slot:
    """One tensor of a checkpoint, loaded on first use."""

    __slots__ = ("_dtype", "_loader", "_lock", "_shape", "_tensor", "source")

    def __init__(
        self,
        tensor: torch.Tensor | None = None,
        *,
        loader: Loader | None = None,
        shape: tuple[int, ...] | None = None,
        dtype: torch.dtype | None = None,
        source: Any = None,
    ) -> None:
        if tensor is None and (loader is None or shape is None or dtype is None):
            raise ValueError("a lazy Slot needs a loader, a shape and a dtype")
        self._tensor = tensor
        self._loader = loader
        # A plot worker may read a slot while the GUI thread edits it: the first read
        # must happen once, or an edit made to one copy could be lost to the other. The
        # lock is made on first read: a million-tensor header needs no million locks.
        self._lock: threading.Lock | None = None
        self._shape = tuple(tensor.shape) if tensor is not None else tuple(shape or ())
        self._dtype = tensor.dtype if tensor is not None else dtype
        #: where the bytes came from (file and key), for saves that copy unchanged data
        self.source = source

    @property
    def loaded(self) -> bool:
        return self._tensor is not None

    @property
    def tensor(self) -> torch.Tensor:
        """The tensor, read from its file on first use."""
        if self._tensor is None:
            if self._lock is None:
                with _LOCK_CREATION:
                    if self._lock is None:
                        self._lock = threading.Lock()
            with self._lock:
                if self._tensor is None:
                    assert self._loader is not None
                    tensor = self._loader()
                    if tuple(tensor.shape) != self._shape or tensor.dtype != self._dtype:
                        raise ValueError(
                            f"stored tensor is {tuple(tensor.shape)} {tensor.dtype}, "
                            f"header said {self._shape} {self._dtype}"
                        )
                    self._tensor = tensor
                    self._loader = None
        return self._tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._tensor.shape) if self._tensor is not None else self._shape

    @property
    def dtype(self) -> torch.dtype:
        return self._tensor.dtype if self._tensor is not None else self._dtype  # type: ignore[return-value]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass
class CheckpointState:
    """The document of checkpoint mode: ordered names, each bound to a Slot.

    Attributes
    ----------
    entries : name -> Slot, in file order; tied names share one Slot object
    extras : the non-tensor entries of a nested checkpoint (epoch, optimizer state,
        hyper-parameters), kept so that a save can put them back
    """

    entries: dict[str, Slot] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> CheckpointState:
        """Build a state from tensors; names that share a tensor object (or storage
        with the same offset, shape and strides) become one tied Slot."""
        slots: dict[tuple[Any, ...], Slot] = {}
        entries: dict[str, Slot] = {}
        for name, tensor in tensors.items():
            key = _alias_key(tensor)
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = Slot(tensor)
            entries[name] = slot
        return cls(entries=entries)

    def tie_groups(self) -> list[list[str]]:
        """Names grouped by shared Slot, for groups of two or more."""
        groups: dict[int, list[str]] = {}
        for name, slot in self.entries.items():
            groups.setdefault(id(slot), []).append(name)
        return [names for names in groups.values() if len(names) > 1]


def _alias_key(tensor: torch.Tensor) -> tuple[Any, ...]:
    if tensor.device.type == "meta" or tensor.numel() == 0:
        return ("object", id(tensor))
    storage = tensor.untyped_storage()
    return (
        storage.data_ptr(),
        tensor.storage_offset(),
        tuple(tensor.shape),
        tuple(tensor.stride()),
        tensor.dtype,
        tensor.device,
    )
