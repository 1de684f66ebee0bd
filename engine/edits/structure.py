"""`replace` and `replace_head`: swap a submodule for a new layer built from a spec.

The new module is built on the CPU under a seed (drawn and recorded when none is
given), then moved to the old module's device and dtype and given its train/eval
mode, so a replay or the exported script builds the very same values. Undo puts
the old module object back in the same place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import paths
from ..allocation import check_allocation, module_nbytes
from ..errors import EditError
from ..module_spec import build_module, input_size
from ..schema import Field as F
from .base import Edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document

#: where classifiers live in torchvision, timm and Hugging Face models, most specific first
HEAD_CANDIDATES = ("fc", "classifier", "heads.head", "head.fc", "head", "heads", "score",
                   "classifier.out_proj", "last_linear", "classif")


def placement(model: nn.Module, module: nn.Module) -> tuple[torch.device, torch.dtype | None]:
    """Device and floating dtype for a module put where `module` was."""
    for tensor in [*module.parameters(), *module.buffers(), *model.parameters()]:
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), None


def placement_text(device: torch.device, dtype: torch.dtype | None) -> dict[str, Any]:
    """Device and dtype as strings, for the script export."""
    return {"device": str(device), "dtype": str(dtype) if dtype is not None else None}


def build_seeded(spec: dict[str, Any], in_size: int | None, seed: int, device: torch.device,
                 dtype: torch.dtype | None, training: bool, field: str = "module", *,
                 doc: Document | None = None, tx: Transaction | None = None,
                 size_field: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build a module from `spec` on the CPU under `seed`, then place it.

    With `doc`, the module is first built on the meta device (no memory) and its size
    checked against what an edit of `doc` may allocate (`engine.allocation`), the
    refusal naming `size_field` (default `field`).
    """
    if doc is not None:
        with torch.device("meta"):
            sized, _ = build_module(spec, in_size, field)
        check_allocation(doc, tx, module_nbytes(sized), size_field or field,
                         f"the new {type(sized).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module, resolved = build_module(spec, in_size, field)
    module.to(device=device)
    if dtype is not None:
        module.to(dtype=dtype)
    module.train(training)
    return module, resolved


@register
class Replace(Edit):
    """Replace the submodule at `target` with a layer built from `module`."""

    op = "replace"
    fields = (
        F("target", "text", "the module to replace", required=True),
        F("module", "object", "the new layer, e.g. {\"type\": \"Linear\", \"out_features\": 10}",
          required=True),
        F("seed", "seed", "seeds the random numbers; drawn and recorded when absent"),
    )
    modes = frozenset({"model"})

    def parse(self) -> None:
        if not isinstance(self.spec["module"], dict):
            raise EditError("replace.module: expected an object such as "
                            '{"type": "Linear", "out_features": 10}')

    def describe(self) -> str:
        return f"Replace {self.value('target')} with {self.spec['module'].get('type', '?')}"

    def perform(self, doc: Document, tx: Transaction) -> Any:
        path, old = doc.module(self.spec["target"], "replace.target")
        if path == "":
            raise EditError("replace.target: the root module cannot be replaced")
        seed = self.seed()
        device, dtype = placement(doc.model, old)
        new, resolved = build_seeded(self.spec["module"], input_size(old), seed,
                                     device, dtype, old.training, "replace.module",
                                     doc=doc, tx=tx)
        self.record(target=path, module=resolved)
        self.resolved.update(placement_text(device, dtype), training=old.training)
        doc.replace_module(tx, path, new)
        return path


def find_head(model: nn.Module) -> str:
    """The dotted path of a model's classifier layer (Linear, or Conv2d 1x1 in SqueezeNet)."""
    for candidate in HEAD_CANDIDATES:
        try:
            path, module = paths.resolve_module(model, candidate)
        except EditError:
            continue
        if isinstance(module, nn.Linear | nn.Conv2d):
            return path
        last = _last_layer(module)
        if last is not None:
            return paths.join_name(path, last)
    last = _last_layer(model, linear_only=True)
    if last is None:
        raise EditError("replace_head.target: no classifier found; name it in 'target'")
    return last


def _last_layer(module: nn.Module, linear_only: bool = False) -> str | None:
    kinds = nn.Linear if linear_only else (nn.Linear, nn.Conv2d)
    found = None
    for path, sub in module.named_modules():
        if path and isinstance(sub, kinds):
            found = path
    return found


@register
class ReplaceHead(Edit):
    """Replace a classifier with one for `num_classes` classes (optionally an MLP)."""

    op = "replace_head"
    # `module` is written in when the edit runs (the exact head built, sizes included),
    # so the recipe and the exported script need no model to know what was built.
    fields = (
        F("num_classes", "int", "classes of the new classifier", required=True, minimum=1,
          label="Classes"),
        F("target", "text", "the classifier to replace (found when absent)", label="Layer"),
        F("hidden", "any", "sizes of hidden layers before the output layer (an MLP head)",
          label="Hidden layers"),
        F("dropout", "number", "dropout before each linear layer, in [0, 1)"),
        F("seed", "seed", "seeds the random numbers; drawn and recorded when absent"),
        F("module", "object", "the exact head built; recorded when the edit runs"),
    )
    modes = frozenset({"model"})

    def parse(self) -> None:
        hidden = self.spec.get("hidden", [])
        if isinstance(hidden, int) and not isinstance(hidden, bool):
            hidden = [hidden]
        if not isinstance(hidden, list) or not all(
            isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in hidden
        ):
            raise EditError("replace_head.hidden: expected a list of positive layer sizes")
        self.hidden = hidden
        dropout = self.get_number("dropout")
        if dropout is not None and not 0 <= dropout < 1:
            raise EditError(f"replace_head.dropout: must be in [0, 1), got {dropout}")

    def describe(self) -> str:
        return f"Replace head ({self.spec['num_classes']} classes)"

    def head_spec(self, old: nn.Module) -> dict[str, Any]:
        """The spec of the new head for a head that looked like `old`."""
        dropout = self.spec.get("dropout")
        if isinstance(old, nn.Conv2d):  # SqueezeNet's 1x1 convolution classifier
            return {"type": "Conv2d", "out_channels": self.spec["num_classes"],
                    "kernel_size": list(old.kernel_size)}
        layers: list[dict[str, Any]] = []
        for size in self.hidden:
            layers += [{"type": "Linear", "out_features": size}, {"type": "ReLU"}]
            if dropout:
                layers.append({"type": "Dropout", "p": dropout})
        if dropout and not self.hidden:
            layers.append({"type": "Dropout", "p": dropout})
        layers.append({"type": "Linear", "out_features": self.spec["num_classes"]})
        return layers[0] if len(layers) == 1 else {"type": "Sequential", "layers": layers}

    def perform(self, doc: Document, tx: Transaction) -> Any:
        target = self.spec.get("target")
        path = find_head(doc.model) if target is None else target
        path, old = doc.module(path, "replace_head.target")
        if path == "":
            raise EditError("replace_head.target: the root module cannot be replaced")
        if not isinstance(old, nn.Linear | nn.Conv2d | nn.Sequential):
            raise EditError(f"replace_head.target: '{path}' is {type(old).__name__}; "
                            "expected a Linear layer (or name the layer to replace)")
        seed = self.seed()
        device, dtype = placement(doc.model, old)
        spec = self.spec.get("module") or self.head_spec(old)
        size_field = ("replace_head.module" if self.spec.get("module")
                      else "replace_head.hidden" if self.hidden else "replace_head.num_classes")
        new, resolved = build_seeded(spec, input_size(old), seed, device, dtype, old.training,
                                     "replace_head.module", doc=doc, tx=tx,
                                     size_field=size_field)
        self.record(target=path, module=resolved)
        self.resolved.update(placement_text(device, dtype), training=old.training)
        doc.replace_module(tx, path, new)
        return {"target": path, "module": resolved}
