"""The interface every document has, whether it holds a live module or bare tensors.

A document answers questions (names, tensors, aliases and ties, selection by names,
globs and module types, totals) and makes changes through the transaction it is
given; it never records history or emits events (the Session does). Edits take a
document and a transaction, never the Session.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .. import paths
from ..changes import DataChange, InPlaceChange, Transaction, ValueChange
from ..errors import EditError
from .rows import Summary, TensorRow, Totals, count

if TYPE_CHECKING:
    from torch import nn

    from ..checkpoint import CheckpointState


class Document(ABC):
    """A model or a checkpoint being edited.

    Attributes
    ----------
    mode : "model" or "checkpoint"
    has_modules : True for a model
    model : the live module (None for a checkpoint)
    checkpoint : the tensors of a checkpoint (None for a model)
    source : JSON-ready description of where the document came from (path, format,
        arch, frozen names of a checkpoint...); filled by whoever opened it
    origin : what a save needs beyond `source` (the files lazy tensors are read from),
        set by the io layer; opaque here
    """

    mode: ClassVar[str] = ""
    #: whether the document has modules (a module tree, module types, module ties)
    has_modules: ClassVar[bool] = False
    #: what the whole document is called in a summary
    whole_title: ClassVar[str] = ""
    model: nn.Module | None = None
    checkpoint: CheckpointState | None = None

    def __init__(self, source: dict[str, Any] | None = None, origin: Any = None) -> None:
        self.source: dict[str, Any] = {} if source is None else source
        self.origin = origin
        self._alias_cache: dict[str, list[str]] | None = None

    # ------------------------------------------------------------------ names
    @abstractmethod
    def tensor_names(self) -> list[str]:
        """Every tensor name (aliases included), in document order."""

    @abstractmethod
    def canonical_name(self, name: str, field: str = "target") -> str:
        """The canonical name of a tensor (`classifier[-1].weight` -> `classifier.6.weight`).

        Raises
        ------
        EditError : no tensor has this name (the message names `field`)
        """

    def is_tensor(self, name: str) -> bool:
        """Whether `name` names a tensor."""
        try:
            self.canonical_name(name)
        except EditError:
            return False
        return True

    @abstractmethod
    def tensor(self, name: str, field: str = "target") -> torch.Tensor:
        """The live tensor object named `name` (read from its file first if lazy)."""

    @abstractmethod
    def tensor_meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        """Shape and dtype of a tensor without reading its data."""

    @abstractmethod
    def rows(self, under: str = "", *, persistent_only: bool = False) -> list[TensorRow]:
        """A row per tensor name at or below the dotted path `under`, in document order.

        `persistent_only` leaves out what a state dict leaves out (non-persistent buffers).
        """

    def iter_rows(self, *, persistent_only: bool = False) -> Iterator[TensorRow]:
        """`rows()` one at a time: a listing of a million tensors never holds them all."""
        return iter(self.rows(persistent_only=persistent_only))

    @abstractmethod
    def row(self, name: str, field: str = "target") -> TensorRow:
        """The row of one tensor (raises EditError naming `field` for an unknown name)."""

    @abstractmethod
    def has_node(self, path: str) -> bool:
        """Whether `path` names a tensor, a module or a group of names ("" always)."""

    @abstractmethod
    def summary(self, path: str) -> Summary:
        """Counts and facts of the module or group of names at `path` ("" the whole)."""

    def totals(self, under: str = "", *, persistent_only: bool = False) -> Totals:
        """Counts over the unique tensors at or below `under` (see `rows`)."""
        return count(self.rows(under, persistent_only=persistent_only))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Current tensors by name, as `model.state_dict()` gives them (persistent ones)."""
        return {row.name: row.load().detach() for row in self.rows(persistent_only=True)}

    def frozen_names(self) -> list[str]:
        """Names of frozen parameters (requires_grad False), for a save to record."""
        return [row.name for row in self.rows() if row.requires_grad is False]

    # ------------------------------------------------------------------ ties
    @abstractmethod
    def tie_groups(self) -> list[list[str]]:
        """Names that share one tensor, for groups of two or more."""

    def module_tie_groups(self) -> list[list[str]]:
        """Module paths that share one module object (only a model has modules)."""
        return []

    def aliases(self, name: str) -> list[str]:
        """Every name bound to the same tensor as `name` (itself included)."""
        if self._alias_cache is None:
            self._alias_cache = {n: group for group in self.tie_groups() for n in group}
        return list(self._alias_cache.get(name, [name]))

    def with_aliases(self, names: set[str]) -> list[str]:
        """`names` and every alias of them, sorted."""
        result = set(names)
        for name in names:
            result.update(self.aliases(name))
        return sorted(result)

    def invalidate(self) -> None:
        """Drop cached name lookups after objects moved (a tie, a replace, a rename)."""
        self._alias_cache = None

    # ------------------------------------------------------------------ modules
    def module(self, path: str, field: str = "target") -> tuple[str, nn.Module]:
        """Resolve a module path to its canonical name and module.

        Raises
        ------
        EditError : the path names no module (a checkpoint has none)
        """
        raise EditError(f"{field}: modules exist only in model mode (open with an architecture)")

    def module_or_none(self, path: str, field: str = "target") -> nn.Module | None:
        """The module at `path`, or None in a document without modules (a checkpoint).

        Raises
        ------
        EditError : a document with modules has none at `path`
        """
        return None

    def check_model(self, field: str) -> None:
        """Raise EditError naming `field` unless the document has modules."""
        raise EditError(f"{field}: needs a model; the session is in checkpoint mode "
                        "(attach an architecture first)")

    def module_types(self) -> list[str]:
        """Class names of the modules that own parameters, sorted (none for a checkpoint)."""
        return []

    def typed_paths(self) -> list[tuple[str, str]]:
        """(dotted path, type name) of every module and tensor, in document order."""
        return [(name, "tensor") for name in self.tensor_names()]

    def tie_candidates(self, target: str) -> list[str]:
        """Names `target` could be tied to: tensors of equal shape and dtype (or modules
        of the same type), excluding what it already shares."""
        if not self.is_tensor(target):
            return self._module_tie_candidates(target)
        aliases = set(self.aliases(target))
        meta = self.tensor_meta(target)
        return [name for name in self.tensor_names()
                if name not in aliases and self.tensor_meta(name) == meta]

    def _module_tie_candidates(self, target: str) -> list[str]:
        return []

    def selection_targets(self, paths: list[str]) -> list[str]:
        """A selection of tree rows as edit targets (nothing selected: nothing)."""
        return list(paths)

    def tensors_of_types(self, types: list[str], field: str) -> list[str]:
        """Parameter names of the modules of these class names, in document order."""
        self.check_model(field)
        return []

    # ------------------------------------------------------------------ selection
    def select_tensors(
        self,
        patterns: list[str],
        field: str = "targets",
        *,
        parameters_only: bool = False,
        allow_empty: bool = False,
        bulk_floating_only: bool = False,
    ) -> list[str]:
        """Resolve names, globs and module names to tensor names, in document order.

        A tensor name or a glob over tensor names selects those tensors (buffers too,
        unless `parameters_only`). A module name, or a glob that matches module names,
        stands for the parameters below it. Each tensor is listed once, under its first
        name, so tied tensors are not selected twice. Order is the document's
        (`named_parameters()` order for parameters), never the order of the patterns.

        With `bulk_floating_only`, what a glob or a module name selects is kept only
        where it is floating-point, as `model.half()` and `model.to(dtype)` change
        floating-point tensors only; a tensor named itself is selected whatever its dtype.

        Raises
        ------
        EditError : a pattern matches nothing (unless `allow_empty`)
        """
        rows = self.rows()
        first_name: dict[int, str] = {}
        for row in rows:
            first_name.setdefault(row.key, row.name)
        canonical = {row.name: first_name[row.key] for row in rows}
        direct = [row.name for row in rows if row.kind != "buffer" or not parameters_only]
        params = [row.name for row in rows if row.kind != "buffer"]
        module_paths = self._module_paths()
        selected: set[str] = set()
        for pattern in patterns:
            bulk = True
            if paths.is_glob(pattern):
                hits = paths.match_names([pattern], direct)[pattern]
                for path in paths.match_names([pattern], module_paths)[pattern]:
                    hits += [name for name in params if paths.under(name, path) and name != path]
            elif pattern in canonical:
                hits = [pattern] if pattern in direct else []
                bulk = False
                if not hits:
                    raise EditError(f"{field}: '{pattern}' is a buffer; only parameters apply")
            else:
                hits, bulk = self._unlisted_hits(pattern, field, params)
            if not hits and not allow_empty:
                raise EditError(f"{field}: '{pattern}' matches no tensor or module")
            if bulk and bulk_floating_only and hits:
                hits = [name for name in hits if self.tensor_meta(name)[1].is_floating_point]
                if not hits and not allow_empty:
                    raise EditError(f"{field}: '{pattern}' matches no floating-point tensor "
                                    "(name integer or bool tensors one by one to change them)")
            selected.update(canonical[name] for name in hits)
        order = {name: position for position, name in enumerate(canonical)}
        return sorted(selected, key=order.__getitem__)

    def match_names(self, patterns: list[str], field: str) -> list[str]:
        """Every name (aliases included) that a name or glob matches, in document order.

        Raises
        ------
        EditError : a pattern matches no name
        """
        names = self.tensor_names()
        hits = paths.match_names(patterns, names)
        for pattern, found in hits.items():
            if not found:
                raise EditError(f"{field}: '{pattern}' matches no tensor")
        selected = {name for found in hits.values() for name in found}
        return [name for name in names if name in selected]

    def _module_paths(self) -> list[str]:
        """Every module path, for globs over modules (none for a checkpoint)."""
        return []

    def _unlisted_hits(self, pattern: str, field: str,
                       params: list[str]) -> tuple[list[str], bool]:
        """(hits, bulk?) for a pattern that is neither a glob nor a listed name."""
        return [], True

    # ------------------------------------------------------------------ changes
    def write_values(self, tx: Transaction, name: str, values: torch.Tensor,
                     index: Any = None) -> None:
        """Write `values` into tensor `name` (or its region `index`) through `tx`.

        `values` broadcast to the region and are cast to the tensor's dtype and device.
        """
        tx.add(ValueChange(self.tensor(name), index, values, tuple(self.aliases(name))))

    def change_in_place(self, tx: Transaction, names: list[str],
                        mutate: Callable[[], None]) -> None:
        """Let `mutate()` change the tensors `names` in place, through `tx` (undoable).

        Each tensor is copied once (a tied tensor under one of its names is enough).
        """
        tensors: dict[int, tuple[torch.Tensor, tuple[str, ...]]] = {}
        for name in names:
            tensor = self.tensor(name)
            tensors.setdefault(id(tensor), (tensor, tuple(self.aliases(name))))
        tx.add(InPlaceChange(list(tensors.values()), mutate))

    def replace_data(self, tx: Transaction, name: str, data: torch.Tensor) -> None:
        """Give tensor `name` new data (dtype or shape), keeping the tensor object."""
        tx.add(DataChange(self.tensor(name), data, tuple(self.aliases(name))))

    @staticmethod
    def check_tie_fits(target: TensorRow, source: TensorRow) -> None:
        """Refuse to tie tensors of another shape, dtype or device, naming both (a tensor
        not read yet has no device: it is read where the other one is)."""
        for what, mine, theirs in (("has shape", target.shape, source.shape),
                                   ("is", target.dtype, source.dtype),
                                   ("is on", target.device, source.device)):
            if mine != theirs and mine is not None and theirs is not None:
                raise EditError(f"tie.source: '{source.name}' {what} {theirs} but "
                                f"'{target.name}' {'has' if what == 'has shape' else what} "
                                f"{mine}")

    def replace_tensor(self, tx: Transaction, name: str, values: torch.Tensor) -> None:
        """Make `values` (same shape) the values of tensor `name`, through `tx` (undoable).

        The values are cast to the tensor's dtype and device. A model keeps its tensor
        object (`.data` is replaced, as a cast does); a checkpoint gets a new Slot, so
        undo data is the old one (free while it was never read from its file).
        """
        tensor = self.tensor(name)
        data = values.detach().to(device=tensor.device, dtype=tensor.dtype)
        if data.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr():
            data = data.clone()  # a result that is the live tensor itself (a passthrough)
        self.replace_data(tx, name, data.contiguous())

    @abstractmethod
    def tie(self, tx: Transaction, target: str, source: str) -> tuple[str, str, str]:
        """Bind `target` to the very tensor (or module) of `source`, undoably.

        Returns
        -------
        ("tensor" or "module", the target's canonical name, the source's)
        """

    @abstractmethod
    def untie(self, tx: Transaction, target: str) -> tuple[str, str]:
        """Give a tied `target` its own copy, undoably; returns (kind, canonical name)."""

    @abstractmethod
    def tree(self) -> Any:
        """A lazy index of this document's tree (see `engine.tree.TreeIndex`)."""
