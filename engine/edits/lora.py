"""`merge_lora`: fold a PEFT LoRA adapter into the document's weights, as peft's
`merge_and_unload()` does.

`{"op": "merge_lora", "adapter": "FOLDER", "scale": 1.0}`: every module the adapter
adapts gets W + scale x scaling x (B @ A) (transposed for Conv1D and Embedding), with
scaling lora_alpha / r (or lora_alpha / sqrt(r) with `use_rslora`). The update is made in
float32 for half-precision factors and added in the weight's dtype, as peft adds it.

In model mode the module kinds decide the orientation, as in peft (a Conv1D is
fan_in_fan_out, a Linear is not, whatever the config says); in checkpoint mode the
config's `fan_in_fan_out` does. Every adapted module must be in the document with the
shape the factors give, or nothing is changed and one line says which does not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..document.rows import shape_text
from ..errors import EditError, FileError
from ..lora.adapter import LoraModule, read_adapter
from ..merge.compute import relative_change
from ..schema import Field as F
from .base import Edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document


@register
class MergeLora(Edit):
    """Merge a LoRA adapter folder into the document (see the module's docstring)."""

    op = "merge_lora"
    fields = (
        F("adapter", "text", "a PEFT adapter folder (adapter_config.json and "
          "adapter_model.safetensors or .bin)", required=True, label="Adapter folder"),
        F("scale", "number", "multiplies the adapter's update (1 is peft's merge)",
          default=1.0),
    )

    def parse(self) -> None:
        self.get_str("adapter")
        self.get_number("scale", 1.0)

    def describe(self) -> str:
        return f"Merge LoRA {Path(self.spec['adapter']).name}"

    def perform(self, doc: Document, tx: Transaction) -> Any:
        try:
            adapter = read_adapter(self.spec["adapter"])
        except FileError as error:
            raise EditError(f"merge_lora.adapter: {error}") from None
        scale = float(self.get_number("scale", 1.0))
        planned = []
        for module in adapter.modules:
            name = _target(doc, module)
            transpose = _fan_in_fan_out(doc, module, adapter.fan_in_fan_out)
            delta_shape = _delta_shape(module, transpose)
            shape, dtype = doc.tensor_meta(name)
            if tuple(shape) != delta_shape:
                hint = "" if module.kind == "embedding" else \
                    f" (fan_in_fan_out is {str(transpose).lower()})"
                raise EditError(f"merge_lora.adapter: '{module.path}' does not fit: the adapter's "
                                f"update is {shape_text(delta_shape)}, '{name}' is "
                                f"{shape_text(shape)}{hint}")
            if not dtype.is_floating_point:
                raise EditError(f"merge_lora.adapter: '{name}' is {dtype}, not floating-point")
            planned.append((name, module, transpose))
        merged = []
        changes = []
        for name, module, transpose in planned:
            weight = doc.tensor(name).detach()
            delta = module.delta(transpose, scale).to(weight.device)
            # peft adds in place: `weight += delta`, computed in the wider of the two dtypes
            # (float32 factors of a bfloat16 model) and rounded once into the weight's.
            wide = torch.promote_types(weight.dtype, delta.dtype)
            with torch.no_grad():
                new = (weight.to(wide) + delta.to(wide)).to(weight.dtype)
                changes.append({"name": name, "shape": list(weight.shape),
                                "relative_change": relative_change(new, weight)})
                doc.replace_tensor(tx, name, new)
            merged.append(name)
        self.resolved["modules"] = [(name, module.path) for name, module, _ in planned]
        return {"adapter": self.spec["adapter"], "merged": merged, "rank": adapter.config["r"],
                "scaling": sorted({module.scaling for module in adapter.modules}),
                "scale": scale, "tensors": changes}


def _target(doc: Document, module: LoraModule) -> str:
    name = module.weight_name
    if not doc.is_tensor(name):
        raise EditError(f"merge_lora.adapter: the adapter adapts '{module.path}', but the "
                        f"document has no tensor '{name}' (an adapter for another model?)")
    return doc.canonical_name(name)


def _fan_in_fan_out(doc: Document, module: LoraModule, configured: bool) -> bool:
    """Whether B @ A is transposed into the weight: by module kind in a model (as peft
    decides per layer), by the config in a checkpoint."""
    layer = doc.module_or_none(module.path, "merge_lora.adapter")
    if layer is None:  # no layers to ask (a checkpoint): the config decides
        return True if module.kind == "embedding" else configured
    kind = type(layer).__name__
    if (module.kind == "embedding") != isinstance(layer, torch.nn.Embedding):
        stored = "lora_embedding_A/B" if module.kind == "embedding" else "lora_A/lora_B"
        raise EditError(f"merge_lora.adapter: '{module.path}' is a {kind}, but the adapter "
                        f"stores {stored} for it")
    if module.kind == "embedding":
        return True
    if kind == "Conv1D":
        return True
    if isinstance(layer, torch.nn.Linear):
        return False
    raise EditError(f"merge_lora.adapter: '{module.path}' is a {kind}; LoRA is merged into "
                    "Linear, Conv1D and Embedding layers")


def _delta_shape(module: LoraModule, transpose: bool) -> tuple[int, int]:
    out, inner = int(module.B.shape[0]), int(module.A.shape[1])
    return (inner, out) if transpose else (out, inner)
