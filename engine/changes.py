"""Primitive reversible changes, and the transaction that applies and records them.

Every edit is built from a few primitives, each of which mutates the document in
`apply()` and puts it back in `revert()`: values written into tensors, a tensor's data
replaced, a flag or attribute set, an entry of a dict swapped (a parameter, buffer or
submodule of a module; a name of a checkpoint), a dict's contents replaced, the whole
document replaced. After the first apply, apply and revert *swap* the stored state
with the live one (`SwapChange`), so a change always holds exactly one copy of the
state that is not live, and the objects that come back are the very same objects
that left (identity is what lets an optimizer that holds a parameter keep working).

A `Transaction` applies changes one by one, tells views about structure changes
around the very mutation (about-to-change, then changed), and, if the edit fails
part-way, reverts the changes that already ran, newest first: a failed edit leaves
no trace. History steps undo and redo through `run_change` too, so the events are
the same whichever way a change goes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, MutableMapping
from typing import Any, Protocol

import torch

#: called as notify("about" | "done", path) around a structure change
Notify = Callable[[str, str], None]

_MISSING = object()  # marks "the attribute was absent" in an attribute swap


class Change:
    """A change of the document that can be applied and reverted, again and again.

    Subclasses implement `apply` (the first call makes the change; later calls
    re-apply it, for redo) and `revert`.
    """

    #: kind of notification a view needs: "values", "flags", "structure", or several
    #: joined by "+" ("values+flags" for a tie)
    kind: str = "values"
    #: tensor or module names a view should refresh
    names: tuple[str, ...] = ()
    #: for structure changes: the dotted node whose children change
    structure_path: str | None = None
    #: other paths of the same node (its parent module is shared): told after it
    also_paths: tuple[str, ...] = ()

    def apply(self) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError

    @property
    def moves_objects(self) -> bool:
        """Whether the change may move objects (name lookups must be rebuilt)."""
        return True

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data this change keeps alive only for undo/redo."""
        return 0


class SwapChange(Change):
    """A change that swaps one piece of live state with the one it holds.

    Subclasses implement `_read` and `_write` of the live state; the change is
    constructed with the new state, and every apply or revert swaps.
    """

    def __init__(self, new: Any) -> None:
        self._other = new

    def _read(self) -> Any:
        raise NotImplementedError

    def _write(self, value: Any) -> None:
        raise NotImplementedError

    def _swap(self) -> None:
        live = self._read()
        self._write(self._other)
        self._other = live

    def apply(self) -> None:
        self._swap()

    def revert(self) -> None:
        self._swap()


def run_change(change: Change, action: Callable[[], None], notify: Notify | None) -> None:
    """Run `action` (the change's apply or revert), announced to views when it is a
    structure change: about-to-change and changed at its path, then at its other paths."""
    path = change.structure_path
    if notify is None or path is None:
        action()
        return
    notify("about", path)
    try:
        action()
    finally:
        notify("done", path)
    # Each pair stays adjacent (a Qt model handles one change at a time); the other
    # paths of a shared parent just rebuild from the new state.
    for other in change.also_paths:
        notify("about", other)
        notify("done", other)


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


def _read_region(tensor: torch.Tensor, index: Any) -> torch.Tensor:
    with torch.no_grad():
        if index is None:
            return tensor.detach().clone()
        return tensor.detach()[index].clone()


def _write_region(tensor: torch.Tensor, index: Any, values: torch.Tensor) -> None:
    with torch.no_grad():
        if index is None:
            tensor.copy_(values)
        else:
            tensor[index] = values


class ValueChange(SwapChange):
    """Values written into (a region of) a tensor in place.

    Only the region is stored, so a one-element edit of a huge tensor costs a few bytes.

    Parameters
    ----------
    tensor : the live tensor
    index : the region (None: the whole tensor)
    values : broadcastable to the region; cast to the tensor's dtype and device
    names : every name of the tensor (aliases included)
    """

    kind = "values"

    def __init__(self, tensor: torch.Tensor, index: Any, values: torch.Tensor,
                 names: tuple[str, ...]) -> None:
        with torch.no_grad():
            region = values.to(device=tensor.device, dtype=tensor.dtype)
        super().__init__(region)
        self.tensor = tensor
        self.index = index
        self.names = names

    def _read(self) -> torch.Tensor:
        return _read_region(self.tensor, self.index)

    def _write(self, value: torch.Tensor) -> None:
        # The first write may broadcast; what is kept from then on is the region itself.
        _write_region(self.tensor, self.index, value)

    @property
    def moves_objects(self) -> bool:
        return False

    @property
    def nbytes(self) -> int:
        return _region_nbytes(self._other)


class InPlaceChange(Change):
    """Several whole tensors changed in place by one function (an initializer, a scale,
    a module's `reset_parameters`, a merge of tensors read from files).

    The first apply copies every tensor, then calls `mutate()`; if it raises, every
    tensor is written back before the error propagates. Later applies and reverts
    swap the copies with the live values.

    Parameters
    ----------
    tensors : (tensor, its names) for every tensor `mutate` may change, each once
    mutate : changes those tensors in place (under `torch.no_grad()`)
    """

    kind = "values"

    def __init__(self, tensors: list[tuple[torch.Tensor, tuple[str, ...]]],
                 mutate: Callable[[], None]) -> None:
        self.tensors = [tensor for tensor, _ in tensors]
        self.names = tuple(dict.fromkeys(name for _, names in tensors for name in names))
        self._mutate: Callable[[], None] | None = mutate
        self._other: list[torch.Tensor] = []

    def apply(self) -> None:
        if self._mutate is None:
            self._swap()
            return
        saved = [_read_region(tensor, None) for tensor in self.tensors]
        try:
            with torch.no_grad():
                self._mutate()
        except BaseException:
            for tensor, values in zip(self.tensors, saved, strict=True):
                _write_region(tensor, None, values)
            raise
        self._other = saved
        self._mutate = None

    def revert(self) -> None:
        self._swap()

    def _swap(self) -> None:
        live = [_read_region(tensor, None) for tensor in self.tensors]
        for tensor, values in zip(self.tensors, self._other, strict=True):
            _write_region(tensor, None, values)
        self._other = live

    @property
    def moves_objects(self) -> bool:
        return False

    @property
    def nbytes(self) -> int:
        return sum(_region_nbytes(tensor) for tensor in self._other)


class DataChange(SwapChange):
    """A tensor's `.data` replaced (a cast or resize that keeps the Parameter object)."""

    kind = "values"

    def __init__(self, tensor: torch.Tensor, new_data: torch.Tensor, names: tuple[str, ...]):
        super().__init__(new_data)
        self.tensor = tensor
        self.names = names

    def _read(self) -> torch.Tensor:
        return self.tensor.data

    def _write(self, value: torch.Tensor) -> None:
        self.tensor.data = value

    @property
    def nbytes(self) -> int:
        return _region_nbytes(self._other)


class SlotChange(SwapChange):
    """The Slot behind one checkpoint tensor (all its tied names) replaced by another.

    A merge or an adapter written into a lazily opened checkpoint swaps Slots instead of
    writing into the old tensor: the old Slot, kept for undo, costs no memory while it
    was never read (its bytes stay in the file, whose descriptor stays open).
    """

    kind = "values"

    def __init__(self, entries: dict[str, Any], names: tuple[str, ...], new_slot: Any) -> None:
        super().__init__(new_slot)
        self.entries = entries
        self.names = names

    def _read(self) -> Any:
        return self.entries[self.names[0]]

    def _write(self, value: Any) -> None:
        for name in self.names:
            self.entries[name] = value

    @property
    def nbytes(self) -> int:
        other = self._other
        return other.nbytes if other.loaded else 0


class FlagChange(SwapChange):
    """`requires_grad` of a tensor set."""

    kind = "flags"

    def __init__(self, tensor: torch.Tensor, requires_grad: bool, names: tuple[str, ...]):
        super().__init__(requires_grad)
        self.tensor = tensor
        self.names = names

    def _read(self) -> bool:
        return self.tensor.requires_grad

    def _write(self, value: bool) -> None:
        self.tensor.requires_grad_(value)

    @property
    def moves_objects(self) -> bool:
        return False


class AttrChange(SwapChange):
    """A plain attribute of an object set (a module's `training` flag, a marker)."""

    def __init__(
        self, obj: object, attr: str, value: Any, kind: str, names: tuple[str, ...]
    ) -> None:
        super().__init__(value)
        self.obj = obj
        self.attr = attr
        self.kind = kind
        self.names = names

    def _read(self) -> Any:
        return getattr(self.obj, self.attr, _MISSING)

    def _write(self, value: Any) -> None:
        if value is _MISSING:
            delattr(self.obj, self.attr)
        else:
            setattr(self.obj, self.attr, value)


class ItemChange(SwapChange):
    """One entry of a dict replaced in place, keeping its position.

    Used for `module._parameters[name]`, `module._buffers[name]`,
    `module._modules[name]` and a checkpoint's names: writing to an existing key of a
    dict keeps the key's position, so `named_parameters()` order survives undo.

    Raises
    ------
    KeyError : the key is not in the mapping (positions are kept only for keys that exist)
    """

    def __init__(
        self,
        mapping: MutableMapping[Hashable, Any],
        key: Hashable,
        value: Any,
        kind: str,
        names: tuple[str, ...],
        structure_path: str | None = None,
        also_paths: tuple[str, ...] = (),
    ) -> None:
        if key not in mapping:
            raise KeyError(key)
        super().__init__(value)
        self.mapping = mapping
        self.key = key
        self.kind = kind
        self.names = names
        self.structure_path = structure_path
        self.also_paths = also_paths

    def _read(self) -> Any:
        return self.mapping[self.key]

    def _write(self, value: Any) -> None:
        self.mapping[self.key] = value

    @property
    def nbytes(self) -> int:
        # The object that is not live is kept alive by this change alone (an untied
        # copy, a replaced head), so its bytes count against the history's budget.
        return object_nbytes(self._other)


class ContentsChange(SwapChange):
    """The whole contents of an ordered dict replaced (renames, deletions, insertions).

    Only references are stored, so a rename among 100,000 names costs two lists of
    references, and undo restores every name at its original position.
    """

    kind = "structure"

    def __init__(self, mapping: dict[str, Any], new_items: list[tuple[str, Any]],
                 structure_path: str, names: tuple[str, ...] = (),
                 owned_bytes: int = 0) -> None:
        super().__init__(new_items)
        self.mapping = mapping
        self.structure_path = structure_path
        self.names = names
        self._owned_bytes = owned_bytes

    def _read(self) -> list[tuple[str, Any]]:
        return list(self.mapping.items())

    def _write(self, value: list[tuple[str, Any]]) -> None:
        self.mapping.clear()
        self.mapping.update(value)

    @property
    def nbytes(self) -> int:
        return self._owned_bytes


class DocumentHolder(Protocol):
    """What holds the document a transaction changes (the Session)."""

    document: Any


class DocumentChange(SwapChange):
    """The whole document replaced (a checkpoint given its architecture becomes a model).

    Views get one structure change of the root; undo and redo swap the very same
    document objects back.
    """

    kind = "structure"
    structure_path = ""

    def __init__(self, holder: DocumentHolder, new_document: Any) -> None:
        super().__init__(new_document)
        self.holder = holder

    def _read(self) -> Any:
        return self.holder.document

    def _write(self, value: Any) -> None:
        self.holder.document = value


class Transaction:
    """Applies and records the changes of one edit; reverts them all if the edit fails.

    Parameters
    ----------
    holder : what holds the document (`tx.document` is its document now)
    notify : told around every structure change (see `run_change`)
    on_layout_change : called after any change that may move objects (not a mere
        value or flag write), so that name lookups cached by the document are dropped
        before the next part of the edit reads them
    allocation_limit : bytes the edit may allocate from its spec's numbers (None: the
        default rule of `engine.allocation`)
    """

    def __init__(self, holder: DocumentHolder, notify: Notify | None = None,
                 on_layout_change: Callable[[], None] | None = None,
                 allocation_limit: int | None = None) -> None:
        self.holder = holder
        self.allocation_limit = allocation_limit
        self.changes: list[Change] = []
        self._notify = notify
        self._on_layout_change = on_layout_change

    @property
    def document(self) -> Any:
        """The document as it is now (a change may have replaced it)."""
        return self.holder.document

    def add(self, change: Change) -> Change:
        """Apply `change` and record it; a change whose apply raises is not recorded."""
        run_change(change, change.apply, self._notify)
        self.changes.append(change)
        if self._on_layout_change is not None and change.moves_objects:
            self._on_layout_change()
        return change

    def replace_document(self, document: Any) -> None:
        """Make `document` the document (undoable; views get a root structure change)."""
        self.add(DocumentChange(self.holder, document))

    def rollback(self) -> None:
        """Revert every recorded change, newest first, and forget them."""
        for change in reversed(self.changes):
            run_change(change, change.revert, self._notify)
        self.changes.clear()
