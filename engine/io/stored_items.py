"""The tensors a save writes: one item per stored tensor, tied names folded into it.

An item knows where its bytes can come from without decoding them: a tensor of a
safetensors file that was never read (its Slot is still lazy) is copied byte for byte
from the file it was opened from; anything read or edited is written from memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..checkpoint import Slot
from .sources import TensorSource

if TYPE_CHECKING:
    from ..session import Session


@dataclass
class StoredItem:
    """One tensor to store under `name`; `aliases` are the other names tied to it."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    slot: Slot | None = None
    tensor_value: torch.Tensor | None = None
    aliases: list[str] = field(default_factory=list)

    @property
    def source(self) -> TensorSource | None:
        """The unchanged bytes on disk, when the tensor was never read into memory."""
        if self.slot is not None and not self.slot.loaded and isinstance(self.slot.source,
                                                                          TensorSource):
            return self.slot.source
        return None

    @property
    def nbytes(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count * self.dtype.itemsize

    def tensor(self) -> torch.Tensor:
        """The values (read from disk for a lazy Slot), detached, on the CPU, contiguous."""
        return self.raw().contiguous()

    def raw(self) -> torch.Tensor:
        """The values, detached, on the CPU, as they are laid out (a broadcast view stays a
        view: writers go through it a chunk at a time)."""
        value = self.slot.tensor if self.slot is not None else self.tensor_value
        assert value is not None
        return value.detach().to("cpu")


def stored_items(session: Session) -> list[StoredItem]:
    """The session's stored tensors in document order, each tie group once (first name)."""
    items: dict[int, StoredItem] = {}
    if session.checkpoint is not None:
        for name, slot in session.checkpoint.entries.items():
            item = items.get(id(slot))
            if item is None:
                items[id(slot)] = StoredItem(name, slot.shape, slot.dtype, slot=slot)
            else:
                item.aliases.append(name)
        return list(items.values())
    for entry in session.tensor_entries():
        if entry.kind == "buffer" and entry.leaf in entry.owner._non_persistent_buffers_set:
            continue
        item = items.get(id(entry.tensor))
        if item is None:
            items[id(entry.tensor)] = StoredItem(entry.name, tuple(entry.tensor.shape),
                                                 entry.tensor.dtype, tensor_value=entry.tensor)
        else:
            item.aliases.append(entry.name)
    return list(items.values())


def alias_map(items: list[StoredItem]) -> dict[str, str]:
    """{alias name: stored name} for every tied name that is not stored itself."""
    return {alias: item.name for item in items for alias in item.aliases}


def frozen_names(session: Session) -> list[str]:
    """Names of parameters with requires_grad False (model mode; kept from the file otherwise)."""
    if session.model is None:
        return list(session.source.get("frozen") or [])
    return [entry.name for entry in session.tensor_entries()
            if entry.kind == "parameter" and not entry.tensor.requires_grad]
