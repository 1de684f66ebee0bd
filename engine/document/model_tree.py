"""The tree of a model: a module's children are its submodules, then its own parameters,
then its own buffers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .rows import count, dtype_name
from .tree_base import BUFFER, MODULE, PARAMETER, DocumentTree, NodeInfo, parent_path

if TYPE_CHECKING:
    from torch import nn


class ModelTree(DocumentTree):
    """Lazy levels of a model document's module tree."""

    root_kind = MODULE

    def __init__(self, document: object) -> None:
        super().__init__(document)
        self._module_ties: dict[str, tuple[str, ...]] | None = None

    def _module(self, path: str) -> nn.Module | None:
        module = self.document.model
        if path:
            for part in path.split("."):
                module = module._modules.get(part)
                if module is None:
                    return None
        return module

    def has_children(self, path: str) -> bool:
        cached = self._children.get(path)
        if cached is not None:
            return bool(cached)
        module = self._module(path)
        if module is None:
            return False
        return (any(child is not None for child in module._modules.values())
                or any(t is not None for t in module._parameters.values())
                or any(t is not None for t in module._buffers.values()))

    def kind(self, path: str) -> str:
        if path == "":
            return self.root_kind
        owner = self._module(parent_path(path))
        leaf = path.rpartition(".")[2]
        if owner is None:
            raise KeyError(path)
        if owner._modules.get(leaf) is not None:
            return MODULE
        if owner._parameters.get(leaf) is not None:
            return PARAMETER
        if owner._buffers.get(leaf) is not None:
            return BUFFER
        raise KeyError(path)

    def _build_children(self, path: str) -> list[str]:
        def join(leaf: str) -> str:
            return f"{path}.{leaf}" if path else leaf

        module = self._module(path)
        if module is None:
            return []
        names = [join(k) for k, v in module._modules.items() if v is not None]
        names += [join(k) for k, v in module._parameters.items() if v is not None]
        names += [join(k) for k, v in module._buffers.items() if v is not None]
        return names

    def _compute_info(self, path: str) -> NodeInfo:
        kind = self.kind(path)
        name = path.rpartition(".")[2]
        if kind == MODULE:
            return self._module_info(path, name)
        tensor = self.document.entry(path).tensor
        trainable = ("yes" if tensor.requires_grad else "no") if kind == PARAMETER else ""
        return NodeInfo(path, name, kind, "Parameter" if kind == PARAMETER else "buffer",
                        tuple(tensor.shape), dtype_name(tensor.dtype), tensor.numel(),
                        trainable, self._tensor_tied_with(path), False)

    def _module_info(self, path: str, name: str) -> NodeInfo:
        module = self._module(path)
        assert module is not None
        totals = count(self.document.rows(path))
        tied = () if path == "" else self._module_tied_with(path)
        return NodeInfo(path, name or type(module).__name__, MODULE, type(module).__name__,
                        None, ", ".join(totals.parameter_dtypes), totals.parameters,
                        totals.trainable_state, tied, self.has_children(path))

    def _module_tied_with(self, path: str) -> tuple[str, ...]:
        if self._module_ties is None:
            self._module_ties = {}
            for group in self.document.module_tie_groups():
                for member in group:
                    self._module_ties[member] = tuple(p for p in group if p != member)
        return self._module_ties.get(path, ())

    def tied_paths(self) -> set[str]:
        self._module_tied_with("")
        return super().tied_paths() | set(self._module_ties or {})

    def invalidate_ties(self, names: list[str] | None = None) -> None:
        super().invalidate_ties(names)
        self._module_ties = None

    def warm(self, rows: int = 64, big_level: int = 5_000) -> None:
        self._tensor_tied_with("")  # the tie groups: a pass over every tensor
        self.info("")
        for path in self.child_names("")[:rows]:
            self.info(path)
