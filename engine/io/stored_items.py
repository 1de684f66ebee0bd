"""The tensors a save writes: one item per stored tensor, tied names folded into it.

An item knows where its bytes can come from without decoding them: a tensor of a
safetensors file that was never read (its Slot is still lazy) is copied byte for byte
from the file it was opened from; anything read or edited is written from memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..document.rows import TensorRow, numel
from .sources import TensorSource

if TYPE_CHECKING:
    from ..document import Document


@dataclass
class StoredItem:
    """One tensor to store under `name`; `aliases` are the other names tied to it."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    row: TensorRow
    aliases: list[str] = field(default_factory=list)

    @property
    def source(self) -> TensorSource | None:
        """The unchanged bytes on disk, when the tensor was never read into memory."""
        unread = self.row.unread_source
        return unread if isinstance(unread, TensorSource) else None

    @property
    def nbytes(self) -> int:
        return numel(self.shape) * self.dtype.itemsize

    def tensor(self) -> torch.Tensor:
        """The values (read from disk for a lazy Slot), detached, on the CPU, contiguous."""
        return self.raw().contiguous()

    def raw(self) -> torch.Tensor:
        """The values, detached, on the CPU, as they are laid out (a broadcast view stays a
        view: writers go through it a chunk at a time)."""
        return self.row.load().detach().to("cpu")


def stored_items(document: Document) -> list[StoredItem]:
    """The document's stored tensors in document order, each tie group once (first name)."""
    items: dict[int, StoredItem] = {}
    for row in document.rows(persistent_only=True):
        item = items.get(row.key)
        if item is None:
            items[row.key] = StoredItem(row.name, row.shape, row.dtype, row=row)
        else:
            item.aliases.append(row.name)
    return list(items.values())


def alias_map(items: list[StoredItem]) -> dict[str, str]:
    """{alias name: stored name} for every tied name that is not stored itself."""
    return {alias: item.name for item in items for alias in item.aliases}


def frozen_names(document: Document) -> list[str]:
    """Names of parameters with requires_grad False (model mode; kept from the file otherwise)."""
    return document.frozen_names()
