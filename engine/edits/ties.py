"""`tie` / `untie`: share one Parameter (or one module, or one checkpoint tensor) between names.

Tying points the target's owner attribute at the source's very Parameter object, as
`model.lm_head.weight = model.embed.weight` does; untying gives the target a copy of
its own with the same values. Undo puts back the very objects that were there.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import paths
from ..changes import ItemChange
from ..checkpoint import Slot
from ..errors import EditError
from .base import Edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..session import Session


def module_tie_groups(model: nn.Module) -> list[list[str]]:
    """Paths that share one module object, for groups of two or more."""
    groups: dict[int, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
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


@register
class Tie(Edit):
    """Make `target` the same object as `source` (tensors of equal shape, or modules)."""

    op = "tie"
    fields = {"target": True, "source": True}

    def parse(self) -> None:
        self.get_str("target")
        self.get_str("source")

    def describe(self) -> str:
        return f"Tie {self.spec['target']} to {self.spec['source']}"

    def perform(self, session: Session, tx: Transaction) -> Any:
        if session.checkpoint is not None:
            return self._tie_checkpoint(session, tx)
        target, source = self.spec["target"], self.spec["source"]
        try:
            target_entry = session.entry(target, "tie.target")
        except EditError:
            return self._tie_modules(session, tx)
        source_entry = session.entry(source, "tie.source")
        self.spec["target"], self.spec["source"] = target_entry.name, source_entry.name
        _check_same_kind(target_entry.tensor, source_entry.tensor, target_entry.name,
                         source_entry.name)
        if target_entry.kind != source_entry.kind:
            raise EditError(f"tie.source: '{source_entry.name}' is a {source_entry.kind} but "
                            f"'{target_entry.name}' is a {target_entry.kind}")
        if target_entry.tensor is source_entry.tensor:
            raise EditError(f"tie.target: '{target_entry.name}' is already tied to "
                            f"'{source_entry.name}'")
        names = tuple(sorted({*session.aliases(target_entry.name),
                              *session.aliases(source_entry.name)}))
        tx.add(ItemChange(target_entry.registry, target_entry.leaf, source_entry.tensor,
                          "values+flags", names))
        self.resolved["kind"] = "tensor"
        return None

    def _tie_modules(self, session: Session, tx: Transaction) -> Any:
        target_path, target = session.module(self.spec["target"], "tie.target")
        source_path, source = session.module(self.spec["source"], "tie.source")
        if target_path == "":
            raise EditError("tie.target: the root module cannot be replaced")
        if target is source:
            raise EditError(f"tie.target: '{target_path}' is already the same module as "
                            f"'{source_path}'")
        if paths.under(source_path, target_path) or paths.under(target_path, source_path):
            raise EditError(f"tie.source: '{source_path}' and '{target_path}' contain one another")
        if type(target) is not type(source):
            raise EditError(f"tie.source: '{source_path}' is {type(source).__name__} but "
                            f"'{target_path}' is {type(target).__name__}")
        target_shapes = {k: tuple(v.shape) for k, v in target.state_dict().items()}
        source_shapes = {k: tuple(v.shape) for k, v in source.state_dict().items()}
        if target_shapes != source_shapes:
            raise EditError(f"tie.source: '{source_path}' and '{target_path}' have different "
                            "tensor shapes")
        self.spec["target"], self.spec["source"] = target_path, source_path
        session.replace_module(tx, target_path, source)
        self.resolved["kind"] = "module"
        return None

    def _tie_checkpoint(self, session: Session, tx: Transaction) -> Any:
        assert session.checkpoint is not None
        target, source = self.spec["target"], self.spec["source"]
        target_slot = session.slot(target, "tie.target")
        source_slot = session.slot(source, "tie.source")
        if target_slot is source_slot:
            raise EditError(f"tie.target: '{target}' is already tied to '{source}'")
        if target_slot.shape != source_slot.shape:
            raise EditError(f"tie.source: '{source}' has shape {source_slot.shape} but "
                            f"'{target}' has {target_slot.shape}")
        if target_slot.dtype != source_slot.dtype:
            raise EditError(f"tie.source: '{source}' is {source_slot.dtype} but "
                            f"'{target}' is {target_slot.dtype}")
        names = tuple(sorted({*session.aliases(target), *session.aliases(source)}))
        tx.add(ItemChange(session.checkpoint.entries, target, source_slot, "values+flags", names))
        return None


@register
class Untie(Edit):
    """Give a tied `target` its own copy, with the same values and flags."""

    op = "untie"
    fields = {"target": True}

    def parse(self) -> None:
        self.get_str("target")

    def describe(self) -> str:
        return f"Untie {self.spec['target']}"

    def perform(self, session: Session, tx: Transaction) -> Any:
        target = self.spec["target"]
        if session.checkpoint is not None:
            slot = session.slot(target, "untie.target")
            if len(session.aliases(target)) < 2:
                raise EditError(f"untie.target: '{target}' is not tied")
            names = tuple(session.aliases(target))
            copy_slot = Slot(slot.tensor.detach().clone())
            tx.add(ItemChange(session.checkpoint.entries, target, copy_slot, "values+flags", names))
            return None
        try:
            entry = session.entry(target, "untie.target")
        except EditError:
            return self._untie_module(session, tx)
        self.spec["target"] = entry.name
        names = tuple(session.aliases(entry.name))
        if len(names) < 2:
            raise EditError(f"untie.target: '{entry.name}' is not tied")
        tensor = entry.tensor
        with torch.no_grad():
            if isinstance(tensor, nn.Parameter):
                own = nn.Parameter(tensor.detach().clone(), requires_grad=tensor.requires_grad)
            else:
                own = tensor.detach().clone()
        tx.add(ItemChange(entry.registry, entry.leaf, own, "values+flags", names))
        self.resolved["kind"] = "tensor"
        return None

    def _untie_module(self, session: Session, tx: Transaction) -> Any:
        assert session.model is not None
        path, module = session.module(self.spec["target"], "untie.target")
        shared = [p for p, m in session.model.named_modules(remove_duplicate=False) if m is module]
        if len(shared) < 2:
            raise EditError(f"untie.target: '{path}' is not shared with another path")
        self.spec["target"] = path
        session.replace_module(tx, path, copy.deepcopy(module))
        self.resolved["kind"] = "module"
        return None


def _check_same_kind(target: torch.Tensor, source: torch.Tensor, target_name: str,
                     source_name: str) -> None:
    if tuple(target.shape) != tuple(source.shape):
        raise EditError(f"tie.source: '{source_name}' has shape {tuple(source.shape)} but "
                        f"'{target_name}' has {tuple(target.shape)}")
    if target.dtype != source.dtype:
        raise EditError(f"tie.source: '{source_name}' is {source.dtype} but "
                        f"'{target_name}' is {target.dtype}")
    if target.device != source.device:
        raise EditError(f"tie.source: '{source_name}' is on {source.device} but "
                        f"'{target_name}' is on {target.device}")
