"""`freeze` / `unfreeze`: set `requires_grad`, optionally keeping BatchNorm layers in eval mode.

A BatchNorm layer keeps moving its running statistics in train mode even when its
weight and bias are frozen. With `bn_eval: true` the selected BatchNorm layers are
put in eval mode and marked, so that the trainer (and `set_train_mode`) keeps them
in eval mode; `unfreeze` with `bn_eval: true` clears the mark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ..changes import AttrChange, FlagChange
from ..errors import EditError
from ..modes import BN_EVAL_MARK
from ..schema import Field as F
from .base import Edit, names_text, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document

class _RequiresGrad(Edit):
    fields = (
        F("targets", "names", "parameters, modules or globs to change", required=True),
        F("except", "names", "parameters, modules or globs to leave as they are"),
        F("bn_eval", "bool",
          "also keep the selected BatchNorm layers in eval mode (or, unfreezing, release them)",
          default=False, label="BatchNorm in eval mode"),
    )
    modes = frozenset({"model"})
    requires_grad = True

    def describe(self) -> str:
        return f"{self.op.capitalize()} {names_text(self.spec['targets'])}"

    def perform(self, doc: Document, tx: Transaction) -> Any:
        targets = self.get_names("targets") or []
        excluded = self.get_names("except") or []
        names = doc.select_tensors(targets, f"{self.op}.targets", parameters_only=True)
        skip = set(doc.select_tensors(excluded, f"{self.op}.except", parameters_only=True))
        self._skipped = sorted(skip)
        names = [name for name in names if name not in skip]
        if not names:
            raise EditError(f"{self.op}.except: excludes every selected parameter")
        for name in names:
            tensor = doc.tensor(name)
            if tensor.requires_grad != self.requires_grad:
                tx.add(FlagChange(tensor, self.requires_grad, tuple(doc.aliases(name))))
        self.resolved["names"] = names
        self.resolved["batchnorm"] = []
        if self.get_bool("bn_eval"):
            self._batchnorm_modes(doc, tx, targets, excluded, names)
        return names

    def _batchnorm_modes(self, doc: Document, tx: Transaction, targets: list[str],
                         excluded: list[str], names: list[str]) -> None:
        model = doc.model  # `modes` admits models only
        roots = _covered_modules(doc, targets, names)
        skipped = _covered_modules(doc, excluded, self._skipped) if excluded else set()
        for path, module in model.named_modules():
            if not isinstance(module, nn.modules.batchnorm._BatchNorm):
                continue
            if not _inside(path, roots) or _inside(path, skipped):
                continue
            marked = bool(getattr(module, BN_EVAL_MARK, False))
            if self.requires_grad and marked:  # unfreeze: back to the model's mode
                tx.add(AttrChange(module, BN_EVAL_MARK, False, "flags", (path,)))
                tx.add(AttrChange(module, "training", model.training, "flags", (path,)))
                self.resolved["batchnorm"].append((path, False, model.training))
            elif not self.requires_grad and not marked:
                tx.add(AttrChange(module, BN_EVAL_MARK, True, "flags", (path,)))
                tx.add(AttrChange(module, "training", False, "flags", (path,)))
                self.resolved["batchnorm"].append((path, True, False))


def _covered_modules(doc: Document, patterns: list[str], names: list[str]) -> set[str]:
    """Module paths named by the patterns, plus the owners of the selected tensors."""
    from .. import paths

    covered = {name.rpartition(".")[0] for name in names}
    module_paths = [path for path, _ in doc.model.named_modules()]
    for pattern in patterns:
        if paths.is_glob(pattern):
            covered.update(paths.match_names([pattern], module_paths)[pattern])
            continue
        try:
            covered.add(doc.module(pattern)[0])
        except EditError:
            continue  # a tensor name: its owner is already covered
    return covered


def _inside(path: str, roots: set[str]) -> bool:
    return any(root == "" or path == root or path.startswith(root + ".") for root in roots)


@register
class Freeze(_RequiresGrad):
    op = "freeze"
    requires_grad = False


@register
class Unfreeze(_RequiresGrad):
    op = "unfreeze"
    requires_grad = True
