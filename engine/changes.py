"""Primitive reversible changes, and the transaction that records them.

Every edit is built from a few primitives, each of which can be undone and redone
exactly: values written into a tensor, an entry of a dict swapped (a parameter,
buffer or submodule of a module; a name of a checkpoint), a plain attribute set.
Undo and redo *swap* the stored state with the live one, so a primitive always
holds exactly one copy of the state that is not live, and the objects that come
back are the very same objects that left (identity is what lets an optimizer that
holds a parameter keep working after an undo).

A `Transaction` applies primitives one by one and, if the edit fails part-way,
reverts the ones that already ran, newest first: a failed edit leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, MutableMapping
from typing import Any

import torch

_MISSING = object()  # marks "the key was absent" in a dict swap


class Change:
    """A change that has been applied and can be undone and redone."""

    #: kind of notification a view needs: "values", "flags" or "structure"
    kind: str = "values"
    #: tensor or module names a view should refresh
    names: tuple[str, ...] = ()
    #: for structure changes: the dotted node whose children change
    structure_path: str | None = None

    def undo(self) -> None:
        raise NotImplementedError

    def redo(self) -> None:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data this change keeps alive only for undo/redo."""
        return 0


def _region_nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def object_nbytes(obj: object) -> int:
    """Bytes of tensor data held by a tensor or a module (0 for anything else)."""
    if isinstance(obj, torch.Tensor):
        return _region_nbytes(obj)
    if isinstance(obj, torch.nn.Module):
        seen: set[int] = set()
        total = 0
        for tensor in [*obj.parameters(), *obj.buffers()]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += _region_nbytes(tensor)
        return total
    return 0


class ValueChange(Change):
    """Values written into (a region of) a tensor in place.

    Only the region is stored, so a one-element edit of a huge tensor costs a few bytes.
    """

    kind = "values"

    def __init__(self, tensor: torch.Tensor, index: Any, names: tuple[str, ...]) -> None:
        self.tensor = tensor
        self.index = index  # None: the whole tensor
        self.names = names
        self._saved = self._read()

    def _read(self) -> torch.Tensor:
        with torch.no_grad():
            if self.index is None:
                return self.tensor.detach().clone()
            return self.tensor.detach()[self.index].clone()

    def _write(self, values: torch.Tensor) -> None:
        with torch.no_grad():
            if self.index is None:
                self.tensor.copy_(values)
            else:
                self.tensor[self.index] = values

    def _swap(self) -> None:
        live = self._read()
        self._write(self._saved)
        self._saved = live

    undo = _swap
    redo = _swap

    @property
    def nbytes(self) -> int:
        return _region_nbytes(self._saved)


class DataChange(Change):
    """A tensor's `.data` replaced (a cast or resize that keeps the Parameter object)."""

    kind = "values"

    def __init__(self, tensor: torch.Tensor, new_data: torch.Tensor, names: tuple[str, ...]):
        self.tensor = tensor
        self.names = names
        self._other = tensor.data
        tensor.data = new_data

    def _swap(self) -> None:
        live = self.tensor.data
        self.tensor.data = self._other
        self._other = live

    undo = _swap
    redo = _swap

    @property
    def nbytes(self) -> int:
        return _region_nbytes(self._other)


class FlagChange(Change):
    """`requires_grad` of a tensor set."""

    kind = "flags"

    def __init__(self, tensor: torch.Tensor, requires_grad: bool, names: tuple[str, ...]):
        self.tensor = tensor
        self.names = names
        self._other = tensor.requires_grad
        tensor.requires_grad_(requires_grad)

    def _swap(self) -> None:
        live = self.tensor.requires_grad
        self.tensor.requires_grad_(self._other)
        self._other = live

    undo = _swap
    redo = _swap


class AttrChange(Change):
    """A plain attribute of an object set (a module's `training` flag, a marker)."""

    def __init__(
        self, obj: object, attr: str, value: Any, kind: str, names: tuple[str, ...]
    ) -> None:
        self.obj = obj
        self.attr = attr
        self.kind = kind
        self.names = names
        self._other = getattr(obj, attr, _MISSING)
        setattr(obj, attr, value)

    def _swap(self) -> None:
        live = getattr(self.obj, self.attr, _MISSING)
        if self._other is _MISSING:
            delattr(self.obj, self.attr)
        else:
            setattr(self.obj, self.attr, self._other)
        self._other = live

    undo = _swap
    redo = _swap


class ItemChange(Change):
    """One entry of a dict replaced in place, keeping its position.

    Used for `module._parameters[name]`, `module._buffers[name]` and
    `module._modules[name]`: writing to an existing key of a dict keeps the key's
    position, so `named_parameters()` order survives undo.
    """

    def __init__(
        self,
        mapping: MutableMapping[Hashable, Any],
        key: Hashable,
        value: Any,
        kind: str,
        names: tuple[str, ...],
        structure_path: str | None = None,
        emit: Callable[[str, str], None] | None = None,
        also_paths: tuple[str, ...] = (),
    ) -> None:
        if key not in mapping:
            raise KeyError(key)  # positions are kept only for keys that exist
        self.mapping = mapping
        self.key = key
        self.kind = kind
        self.names = names
        self.structure_path = structure_path
        #: other paths of the same node (its parent module is shared): told afterwards
        self.also_paths = also_paths
        self._emit = emit
        self._other = mapping[key]
        self._set(value)

    def _set(self, value: Any) -> None:
        if self._emit is not None and self.structure_path is not None:
            self._emit("about", self.structure_path)
            try:
                self.mapping[self.key] = value
            finally:
                self._emit("done", self.structure_path)
            # Each pair stays adjacent (a Qt model handles one change at a time); the
            # other paths of a shared parent just rebuild from the new state.
            for path in self.also_paths:
                self._emit("about", path)
                self._emit("done", path)
        else:
            self.mapping[self.key] = value

    def _swap(self) -> None:
        live = self.mapping[self.key]
        self._set(self._other)
        self._other = live

    undo = _swap
    redo = _swap

    @property
    def nbytes(self) -> int:
        # The object that is not live is kept alive by this change alone (an untied
        # copy, a replaced head), so its bytes count against the history's budget.
        return object_nbytes(self._other)


class ContentsChange(Change):
    """The whole contents of an ordered dict replaced (renames, deletions, insertions).

    Only references are stored, so a rename among 100,000 names costs two lists of
    references, and undo restores every name at its original position.
    """

    kind = "structure"

    def __init__(
        self,
        mapping: dict[str, Any],
        new_items: list[tuple[str, Any]],
        structure_path: str,
        emit: Callable[[str, str], None] | None,
        names: tuple[str, ...] = (),
        owned_bytes: int = 0,
    ) -> None:
        self.mapping = mapping
        self.structure_path = structure_path
        self.names = names
        self._emit = emit
        self._owned_bytes = owned_bytes
        self._other = list(mapping.items())
        self._set(new_items)

    def _set(self, items: list[tuple[str, Any]]) -> None:
        if self._emit is not None:
            self._emit("about", self.structure_path)
        try:
            self.mapping.clear()
            self.mapping.update(items)
        finally:
            if self._emit is not None:
                self._emit("done", self.structure_path)

    def _swap(self) -> None:
        live = list(self.mapping.items())
        self._set(self._other)
        self._other = live

    undo = _swap
    redo = _swap

    @property
    def nbytes(self) -> int:
        return self._owned_bytes


class Transaction:
    """Records the changes of one edit; reverts them all if the edit fails.

    Parameters
    ----------
    on_layout_change : called after any change that may move objects (not a mere
        value or flag write), so that name lookups cached by the session are dropped
        before the next part of the edit reads them
    """

    def __init__(self, on_layout_change: Callable[[], None] | None = None) -> None:
        self.changes: list[Change] = []
        self._on_layout_change = on_layout_change

    def add(self, change: Change) -> Change:
        """Record a change that has just been applied."""
        self.changes.append(change)
        if self._on_layout_change is not None and not isinstance(change, ValueChange | FlagChange):
            self._on_layout_change()
        return change

    def rollback(self) -> None:
        """Undo every recorded change, newest first, and forget them."""
        for change in reversed(self.changes):
            change.undo()
        self.changes.clear()
