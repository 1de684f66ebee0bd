"""A document of bare tensors by dotted name ("checkpoint mode"), read lazily.

Names are bound to `Slot`s (see `engine.checkpoint`); names sharing one Slot are tied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from ..changes import ContentsChange, ItemChange, SlotChange, Transaction
from ..checkpoint import CheckpointState, Slot
from ..errors import EditError
from .base import Document
from .rows import TENSOR, Summary, TensorRow, count


def _row(name: str, slot: Slot) -> TensorRow:
    return TensorRow(name, TENSOR, slot.shape, slot.dtype, None, id(slot), True,
                     str(slot.tensor.device) if slot.loaded else None, lambda: slot.tensor,
                     None if slot.loaded else slot.source, slot.source)


class CheckpointDocument(Document):
    """Tensors without a module.

    Parameters
    ----------
    state : the names, their Slots and the file's other entries; edited in place
    source, origin : see `Document`
    """

    mode = "checkpoint"
    whole_title = "The whole checkpoint"

    def __init__(self, state: CheckpointState | dict[str, torch.Tensor],
                 source: dict[str, Any] | None = None, origin: Any = None) -> None:
        if isinstance(state, dict):
            state = CheckpointState.from_tensors(state)
        super().__init__(source, origin)
        self.checkpoint: CheckpointState = state

    @property
    def entries(self) -> dict[str, Slot]:
        """name -> Slot, in file order; tied names share one Slot."""
        return self.checkpoint.entries

    # ------------------------------------------------------------------ names
    def tensor_names(self) -> list[str]:
        return list(self.entries)

    def slot(self, name: str, field: str = "target") -> Slot:
        """The Slot bound to `name`; raise EditError naming `field`."""
        slot = self.entries.get(name)
        if slot is None:
            raise EditError(f"{field}: no tensor named '{name}'")
        return slot

    def is_tensor(self, name: str) -> bool:
        return name in self.entries

    def canonical_name(self, name: str, field: str = "target") -> str:
        self.slot(name, field)
        return name

    def tensor(self, name: str, field: str = "target") -> torch.Tensor:
        return self.slot(name, field).tensor

    def tensor_meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        slot = self.entries[name]
        return slot.shape, slot.dtype

    def rows(self, under: str = "", *, persistent_only: bool = False) -> list[TensorRow]:
        if not under:
            return [_row(name, slot) for name, slot in self.entries.items()]
        prefix = f"{under}."
        return [_row(name, slot) for name, slot in self.entries.items()
                if name == under or name.startswith(prefix)]

    def iter_rows(self, *, persistent_only: bool = False) -> Iterator[TensorRow]:
        return (_row(name, slot) for name, slot in self.entries.items())

    def row(self, name: str, field: str = "target") -> TensorRow:
        return _row(name, self.slot(name, field))

    def selection_targets(self, paths: list[str]) -> list[str]:
        """Groups of names become globs (`encoder.*`); nothing selected is everything."""
        if not paths:
            return ["*"]
        return [path if path in self.entries else (f"{path}.*" if path else "*")
                for path in paths]

    def has_node(self, path: str) -> bool:
        prefix = f"{path}."
        return not path or any(name == path or name.startswith(prefix) for name in self.entries)

    def summary(self, path: str) -> Summary:
        return Summary(path or self.whole_title, "group of tensors",
                       count(self.rows(path)))

    def rows_of(self, names: list[str]) -> list[TensorRow]:
        """The rows of exactly these names, in the order given."""
        entries = self.entries
        return [_row(name, entries[name]) for name in names]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: slot.tensor for name, slot in self.entries.items()}

    def frozen_names(self) -> list[str]:
        # A checkpoint has no requires_grad: the frozen names of the file it came from.
        return list(self.source.get("frozen") or [])

    # ------------------------------------------------------------------ ties
    def tie_groups(self) -> list[list[str]]:
        return self.checkpoint.tie_groups()

    def tie(self, tx: Transaction, target: str, source: str) -> tuple[str, str, str]:
        target_slot = self.slot(target, "tie.target")
        source_slot = self.slot(source, "tie.source")
        if target_slot is source_slot:
            raise EditError(f"tie.target: '{target}' is already tied to '{source}'")
        self.check_tie_fits(_row(target, target_slot), _row(source, source_slot))
        names = tuple(sorted({*self.aliases(target), *self.aliases(source)}))
        tx.add(ItemChange(self.entries, target, source_slot, "values+flags", names))
        return "tensor", target, source

    def untie(self, tx: Transaction, target: str) -> tuple[str, str]:
        slot = self.slot(target, "untie.target")
        names = tuple(self.aliases(target))
        if len(names) < 2:
            raise EditError(f"untie.target: '{target}' is not tied")
        tx.add(ItemChange(self.entries, target, Slot(slot.tensor.detach().clone()),
                          "values+flags", names))
        return "tensor", target

    # ------------------------------------------------------------------ changes
    def replace_tensor(self, tx: Transaction, name: str, values: torch.Tensor) -> None:
        slot = self.slot(name)
        data = values.detach().to(dtype=slot.dtype)
        if slot.loaded and data.untyped_storage().data_ptr() == \
                slot.tensor.untyped_storage().data_ptr():
            data = data.clone()
        self.replace_slot(tx, name, Slot(data.contiguous()))

    def replace_slot(self, tx: Transaction, name: str, slot: Slot) -> None:
        """Bind `name` and every name tied to it to `slot` (any shape or dtype), undoably;
        undo keeps the old Slot (free while it was never read from its file)."""
        self.slot(name)
        tx.add(SlotChange(self.entries, tuple(self.aliases(name)), slot))

    def replace_entries(self, tx: Transaction, items: list[tuple[str, Slot]],
                        names: tuple[str, ...], owned_bytes: int = 0) -> None:
        """Make `items` the document's names, in order (undoable; one root structure change).

        `owned_bytes` are the bytes of loaded tensors only the undo data keeps alive
        afterwards (deleted ones).
        """
        tx.add(ContentsChange(self.entries, items, "", names=names, owned_bytes=owned_bytes))

    def tree(self) -> Any:
        from .checkpoint_tree import CheckpointTree

        return CheckpointTree(self)
