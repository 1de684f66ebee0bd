"""A document that is a live `nn.Module`: parameters and buffers under a module tree."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import paths
from ..changes import ItemChange, Transaction
from ..errors import EditError
from .base import Document
from .rows import BUFFER, PARAMETER, Summary, TensorRow, count


@dataclass(frozen=True)
class TensorEntry:
    """Where one named tensor lives in a model."""

    name: str
    owner_path: str
    owner: nn.Module
    leaf: str
    kind: str  # "parameter" or "buffer"
    tensor: torch.Tensor

    @property
    def registry(self) -> dict[str, Any]:
        return self.owner._parameters if self.kind == PARAMETER else self.owner._buffers

    @property
    def persistent(self) -> bool:
        return self.kind == PARAMETER or self.leaf not in self.owner._non_persistent_buffers_set

    def row(self) -> TensorRow:
        tensor = self.tensor
        return TensorRow(self.name, self.kind, tuple(tensor.shape), tensor.dtype,
                         tensor.requires_grad if self.kind == PARAMETER else None, id(tensor),
                         self.persistent, str(tensor.device), lambda: tensor)


def _entries_of(module: nn.Module, prefix: str) -> list[TensorEntry]:
    entries = []
    for path, sub in module.named_modules(prefix=prefix, remove_duplicate=False):
        for kind, registry in ((PARAMETER, sub._parameters), (BUFFER, sub._buffers)):
            for leaf, tensor in registry.items():
                if tensor is not None:
                    entries.append(TensorEntry(paths.join_name(path, leaf), path, sub, leaf,
                                               kind, tensor))
    return entries


class ModelDocument(Document):
    """A live module being edited ("model mode").

    Parameters
    ----------
    model : the module; edited in place, never copied
    source, origin : see `Document`
    """

    mode = "model"
    has_modules = True
    whole_title = "The whole model"

    def __init__(self, model: nn.Module, source: dict[str, Any] | None = None,
                 origin: Any = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Session(model): expected an nn.Module, got {type(model).__name__}")
        super().__init__(source, origin)
        self.model: nn.Module = model
        self._entries_cache: list[TensorEntry] | None = None

    # ------------------------------------------------------------------ names
    def tensor_entries(self) -> list[TensorEntry]:
        """Every parameter and buffer of the model, aliases included, in state_dict order."""
        if self._entries_cache is None:
            self._entries_cache = _entries_of(self.model, "")
        return self._entries_cache

    def invalidate(self) -> None:
        super().invalidate()
        self._entries_cache = None

    def tensor_names(self) -> list[str]:
        return [entry.name for entry in self.tensor_entries()]

    def entry(self, name: str, field: str = "target") -> TensorEntry:
        """Resolve a tensor name; raise EditError naming `field`."""
        if not isinstance(name, str):
            raise EditError(f"{field}: expected a tensor name")
        owner_path, leaf = paths.split_name(name)
        owner_path, owner = paths.resolve_module(self.model, owner_path, field)
        for kind, registry in ((PARAMETER, owner._parameters), (BUFFER, owner._buffers)):
            tensor = registry.get(leaf)
            if tensor is not None:
                return TensorEntry(paths.join_name(owner_path, leaf), owner_path, owner, leaf,
                                   kind, tensor)
        if leaf in owner._modules:
            raise EditError(f"{field}: '{name}' is a module, not a tensor")
        raise EditError(f"{field}: no tensor named '{name}'")

    def canonical_name(self, name: str, field: str = "target") -> str:
        return self.entry(name, field).name

    def tensor(self, name: str, field: str = "target") -> torch.Tensor:
        return self.entry(name, field).tensor

    def tensor_meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        tensor = self.entry(name).tensor
        return tuple(tensor.shape), tensor.dtype

    def rows(self, under: str = "", *, persistent_only: bool = False) -> list[TensorRow]:
        if under:
            # Only the module's own subtree is walked: a module's summary costs its size.
            try:
                path, module = paths.resolve_module(self.model, under)
                entries = _entries_of(module, path)
            except EditError:
                entries = [self.entry(under)]
        else:
            entries = self.tensor_entries()
        return [entry.row() for entry in entries if entry.persistent or not persistent_only]

    def iter_rows(self, *, persistent_only: bool = False) -> Iterator[TensorRow]:
        return (entry.row() for entry in self.tensor_entries()
                if entry.persistent or not persistent_only)

    def row(self, name: str, field: str = "target") -> TensorRow:
        return self.entry(name, field).row()

    def has_node(self, path: str) -> bool:
        try:
            self.module(path)
        except EditError:
            return self.is_tensor(path)
        return True

    def summary(self, path: str) -> Summary:
        path, module = self.module(path)
        tied = next((group for group in self.module_tie_groups() if path and path in group), [])
        return Summary(path or self.whole_title, type(module).__name__,
                       count(self.rows(path)), "train" if module.training else "eval",
                       [other for other in tied if other != path])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    # ------------------------------------------------------------------ ties
    def tie_groups(self) -> list[list[str]]:
        groups: dict[int, list[str]] = {}
        for entry in self.tensor_entries():
            groups.setdefault(id(entry.tensor), []).append(entry.name)
        return [names for names in groups.values() if len(names) > 1]

    def module_tie_groups(self) -> list[list[str]]:
        groups: dict[int, list[str]] = {}
        for path, module in self.model.named_modules(remove_duplicate=False):
            if path:
                groups.setdefault(id(module), []).append(path)
        # A shared module's own children are shared too; list only the top of each share.
        result = [group for group in groups.values() if len(group) > 1]
        tops = []
        for group in result:
            parents = {path.rpartition(".")[0] for path in group}
            if not any(parents <= set(other) for other in result if other is not group):
                tops.append(group)
        return tops

    def tie(self, tx: Transaction, target: str, source: str) -> tuple[str, str, str]:
        try:
            target_entry = self.entry(target, "tie.target")
        except EditError:
            return self._tie_modules(tx, target, source)
        source_entry = self.entry(source, "tie.source")
        self.check_tie_fits(target_entry.row(), source_entry.row())
        if target_entry.kind != source_entry.kind:
            raise EditError(f"tie.source: '{source_entry.name}' is a {source_entry.kind} but "
                            f"'{target_entry.name}' is a {target_entry.kind}")
        if target_entry.tensor is source_entry.tensor:
            raise EditError(f"tie.target: '{target_entry.name}' is already tied to "
                            f"'{source_entry.name}'")
        names = tuple(sorted({*self.aliases(target_entry.name),
                              *self.aliases(source_entry.name)}))
        tx.add(ItemChange(target_entry.registry, target_entry.leaf, source_entry.tensor,
                          "values+flags", names))
        return "tensor", target_entry.name, source_entry.name

    def _tie_modules(self, tx: Transaction, target: str, source: str) -> tuple[str, str, str]:
        target_path, target_module = self.module(target, "tie.target")
        source_path, source_module = self.module(source, "tie.source")
        if target_path == "":
            raise EditError("tie.target: the root module cannot be replaced")
        if target_module is source_module:
            raise EditError(f"tie.target: '{target_path}' is already the same module as "
                            f"'{source_path}'")
        if paths.under(source_path, target_path) or paths.under(target_path, source_path):
            raise EditError(f"tie.source: '{source_path}' and '{target_path}' contain one another")
        if type(target_module) is not type(source_module):
            raise EditError(f"tie.source: '{source_path}' is {type(source_module).__name__} but "
                            f"'{target_path}' is {type(target_module).__name__}")
        target_shapes = {k: tuple(v.shape) for k, v in target_module.state_dict().items()}
        source_shapes = {k: tuple(v.shape) for k, v in source_module.state_dict().items()}
        if target_shapes != source_shapes:
            raise EditError(f"tie.source: '{source_path}' and '{target_path}' have different "
                            "tensor shapes")
        self.replace_module(tx, target_path, source_module)
        return "module", target_path, source_path

    def untie(self, tx: Transaction, target: str) -> tuple[str, str]:
        try:
            entry = self.entry(target, "untie.target")
        except EditError:
            return self._untie_module(tx, target)
        names = tuple(self.aliases(entry.name))
        if len(names) < 2:
            raise EditError(f"untie.target: '{entry.name}' is not tied")
        tensor = entry.tensor
        with torch.no_grad():
            if isinstance(tensor, nn.Parameter):
                own = nn.Parameter(tensor.detach().clone(), requires_grad=tensor.requires_grad)
            else:
                own = tensor.detach().clone()
        tx.add(ItemChange(entry.registry, entry.leaf, own, "values+flags", names))
        return "tensor", entry.name

    def _untie_module(self, tx: Transaction, target: str) -> tuple[str, str]:
        path, module = self.module(target, "untie.target")
        shared = [p for p, m in self.model.named_modules(remove_duplicate=False) if m is module]
        if len(shared) < 2:
            raise EditError(f"untie.target: '{path}' is not shared with another path")
        self.replace_module(tx, path, copy.deepcopy(module))
        return "module", path

    # ------------------------------------------------------------------ modules
    def module(self, path: str, field: str = "target") -> tuple[str, nn.Module]:
        return paths.resolve_module(self.model, path, field)

    def module_or_none(self, path: str, field: str = "target") -> nn.Module:
        return self.module(path, field)[1]

    def check_model(self, field: str) -> None:
        """A model has modules: nothing to refuse."""

    def module_types(self) -> list[str]:
        return sorted({type(module).__name__ for module in self.model.modules()
                       if any(t is not None for t in module._parameters.values())})

    def typed_paths(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        for path, module in self.model.named_modules(remove_duplicate=False):
            if path:
                rows.append((path, type(module).__name__))
            prefix = f"{path}." if path else ""
            rows.extend((prefix + leaf, "Parameter")
                        for leaf, tensor in module._parameters.items() if tensor is not None)
            rows.extend((prefix + leaf, "buffer")
                        for leaf, tensor in module._buffers.items() if tensor is not None)
        return rows

    def _module_tie_candidates(self, target: str) -> list[str]:
        _, module = self.module(target)
        return [path for path, other in self.model.named_modules(remove_duplicate=False)
                if path and type(other) is type(module) and other is not module
                and not path.startswith(target + ".") and not target.startswith(path + ".")]

    def tensors_of_types(self, types: list[str], field: str) -> list[str]:
        found: set[str] = set()
        wanted: set[str] = set()
        for path, module in self.model.named_modules():
            if type(module).__name__ in types:
                found.add(type(module).__name__)
                wanted.update(paths.join_name(path, leaf)
                              for leaf, tensor in module._parameters.items() if tensor is not None)
        missing = [name for name in types if name not in found]
        if missing:
            raise EditError(f"{field}: the model has no module of type '{missing[0]}'")
        return self.select_tensors(sorted(wanted), field, parameters_only=True)

    def alias_paths(self, path: str) -> tuple[str, ...]:
        """Other paths of the node at `path` when its parent module is shared by several
        paths (a tied module): a change under one path shows under all of them."""
        parent_path, leaf = paths.split_name(path)
        _, parent = self.module(parent_path)
        others = [paths.join_name(p, leaf)
                  for p, m in self.model.named_modules(remove_duplicate=False) if m is parent]
        return tuple(p for p in others if p != path)

    def replace_module(self, tx: Transaction, path: str, new: nn.Module) -> None:
        """Put `new` at module `path` through `tx` (undoable, keeps the position)."""
        parent_path, leaf = paths.split_name(path)
        _, parent = self.module(parent_path)
        tx.add(ItemChange(parent._modules, leaf, new, "structure", (path,), structure_path=path,
                          also_paths=self.alias_paths(path)))

    def _module_paths(self) -> list[str]:
        return [path for path, _ in self.model.named_modules(remove_duplicate=False)]

    def _unlisted_hits(self, pattern: str, field: str,
                       params: list[str]) -> tuple[list[str], bool]:
        # Not a literal name: it may be a tensor named with index notation
        # (`classifier[-1].weight`) or a module whose parameters are meant.
        try:
            return [self.entry(pattern, field).name], False
        except EditError:
            pass
        path, _ = self.module(pattern, field)
        hits = [name for name in params if paths.under(name, path)]
        if not hits:
            raise EditError(f"{field}: module '{path}' has no parameters")
        return hits, True

    def tree(self) -> Any:
        from .model_tree import ModelTree

        return ModelTree(self)
