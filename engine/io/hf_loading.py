"""Put a checkpoint into a transformers model the way `from_pretrained` does (transformers 5.x).

Real Hugging Face checkpoints rarely match the model's `state_dict()` name for name:
older transformers versions and sentence-transformers saved buffers that are now
non-persistent (`embeddings.position_ids`, `rotary_emb.inv_freq`), a head model's file
may lack or carry the base model's prefix (`bert.`), old files use legacy names
(`LayerNorm.gamma`), and `.bin` files store both names of tied embeddings.
`from_pretrained` copes with each of these; so does opening a folder with `arch="hf"`:

1. Names are renamed as `from_pretrained` renames them: transformers' own weight
   renamings (legacy and per model type), then the base-model prefix added or stripped
   per name when that makes it one of the model's names.
2. Names the model ties (`lm_head.weight` and the input embeddings) but the file holds
   with different values are untied, as `from_pretrained` does (it warns and keeps both).
3. After the tensors are put in, names left missing or unexpected that the model's
   class says to ignore are moved to the report's `ignored` list, with the reason:
   `_keys_to_ignore_on_load_missing`, `_keys_to_ignore_on_load_unexpected`, and the
   patterns `from_pretrained` adds itself for models with `position_ids` or
   `rotary_emb.inv_freq` buffers.

What remains missing, unexpected or of another shape is reported as for any
architecture (and refused when strict).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

#: patterns `from_pretrained` ignores among unexpected names, when the model has such buffers
_BUILT_IN_UNEXPECTED = (
    ("rotary_emb.inv_freq", r"rotary_emb\.inv_freq",
     "a non-persistent buffer computed from the config; older versions saved it"),
    ("position_ids", r"(^|\.)position_ids$",
     "a non-persistent buffer built from the config; older transformers versions and "
     "sentence-transformers saved it"),
)


def is_transformers_model(model: nn.Module) -> bool:
    """Whether `model` is a transformers `PreTrainedModel` (so its loading rules apply)."""
    try:
        from transformers import PreTrainedModel
    except ImportError:
        return False
    return isinstance(model, PreTrainedModel)


@dataclass
class Matched:
    """The file's tensors under the model's names, and what was done to get there."""

    stored: dict[str, Any]
    #: [file name, model name] for names that were renamed (prefix, legacy names)
    renamed: list[list[str]] = field(default_factory=list)
    #: file names that need one of transformers' tensor conversions (fused experts...)
    needs_conversion: list[str] = field(default_factory=list)
    #: model names untied because the file holds them with different values
    untied: list[str] = field(default_factory=list)


def match_names(model: nn.Module, stored: Mapping[str, Any]) -> Matched:
    """Rename the file's names to the model's, as `from_pretrained` does.

    Parameters
    ----------
    model : the transformers model being filled
    stored : file name -> Slot or tensor

    Returns
    -------
    The renamed mapping (file order kept). When two file names land on one model
    name, the first in transformers' order (dot-natural) wins and the other keeps
    its file name, so it shows as unexpected instead of being dropped silently.
    """
    expected = _expected_names(model)
    rename = _renamer(model, expected)
    targets: dict[str, str] = {}
    needs_conversion: list[str] = []
    for name in sorted(stored, key=_dot_natural_key):
        new, converted = rename(name)
        if converted:
            needs_conversion.append(name)
            new = name
        targets[name] = new
    # A name that two file names claim goes to the one that keeps its own name, else to
    # the first; the others keep their file names (each pass reverts at least one).
    while True:
        owners: dict[str, list[str]] = {}
        for name, new in targets.items():
            owners.setdefault(new, []).append(name)
        clashes = [names for names in owners.values() if len(names) > 1]
        if not clashes:
            break
        for names in clashes:
            keeper = next((name for name in names if targets[name] == name), names[0])
            for name in names:
                if name != keeper:
                    targets[name] = name
    renamed = [[name, targets[name]] for name in stored if targets[name] != name]
    return Matched({targets[name]: item for name, item in stored.items()}, renamed,
                   needs_conversion)


def untie_differing(model: nn.Module, stored: Mapping[str, Any]) -> list[str]:
    """Untie the model's tied names that the file holds with different values.

    `from_pretrained` ties `target -> source` (`model.all_tied_weights_keys`) only when
    the checkpoint lacks one of them or holds both equal; with two different tensors
    it keeps both, untied. The target gets its own Parameter (initial values; the
    file's tensor is put in later) and leaves `all_tied_weights_keys`.

    Returns
    -------
    The names untied.
    """
    ties = dict(getattr(model, "all_tied_weights_keys", None) or {})
    untied = []
    for target, source in ties.items():
        if target not in stored or source not in stored:
            continue
        left, right = _tensor_of(stored[target]), _tensor_of(stored[source])
        if tuple(left.shape) == tuple(right.shape) and torch.equal(left, right):
            continue
        owner_path, _, leaf = target.rpartition(".")
        owner = model.get_submodule(owner_path)
        tied = owner._parameters.get(leaf)
        if tied is None:
            continue
        owner._parameters[leaf] = nn.Parameter(tied.detach().clone(),
                                               requires_grad=tied.requires_grad)
        model.all_tied_weights_keys.pop(target, None)
        untied.append(target)
    return untied


def apply_ignores(model: nn.Module, report: dict[str, Any]) -> None:
    """Move the missing and unexpected names the model's rules ignore to `report["ignored"]`.

    Changes `report` in place: `missing` and `unexpected` keep what is left; `ignored`
    gets `{"name", "kind" ("missing"/"unexpected"), "reason"}` per name.
    """
    missing_rules = [(pattern, f"listed in {type(model).__name__}."
                      f"_keys_to_ignore_on_load_missing ('{pattern}')")
                     for pattern in sorted(getattr(model, "_keys_to_ignore_on_load_missing",
                                                   None) or ())]
    unexpected_rules = [(pattern, f"listed in {type(model).__name__}."
                         f"_keys_to_ignore_on_load_unexpected ('{pattern}')")
                        for pattern in sorted(getattr(model, "_keys_to_ignore_on_load_unexpected",
                                                      None) or ())]
    buffers = [name for name, _ in model.named_buffers()]
    for suffix, pattern, reason in _BUILT_IN_UNEXPECTED:
        if any(name.endswith(suffix) for name in buffers):
            unexpected_rules.append((pattern, reason))
    ignored = list(report.get("ignored") or [])
    for kind, rules in (("missing", missing_rules), ("unexpected", unexpected_rules)):
        kept = []
        for name in report[kind]:
            reason = next((text for pattern, text in rules if re.search(pattern, name)), None)
            if reason is None:
                kept.append(name)
            else:
                ignored.append({"name": name, "kind": kind, "reason": reason})
        report[kind] = kept
    report["ignored"] = ignored


# ----------------------------------------------------------------------------- helpers
def _expected_names(model: nn.Module) -> dict[str, torch.Tensor]:
    """The names `from_pretrained` loads into: the model's state_dict (tied names too)."""
    return dict(model.state_dict(keep_vars=True))


def _renamer(model: nn.Module, expected: Mapping[str, Any]) -> Any:
    """name -> (model name, needs a tensor conversion), as transformers renames on load."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming
        from transformers.core_model_loading import rename_source_key as transformers_rename

        transforms = get_model_conversion_mapping(model)
        renamings = [item for item in transforms if isinstance(item, WeightRenaming)]
        converters = [item for item in transforms if isinstance(item, WeightConverter)]
    except (ImportError, AttributeError, TypeError):
        # Another transformers version: the base-model prefix rule alone.
        def fallback(name: str) -> tuple[str, bool]:
            return _with_prefix_rule(name, prefix, expected), False

        return fallback

    def rename(name: str) -> tuple[str, bool]:
        new, pattern = transformers_rename(name, renamings, converters,
                                           prefix or None, expected)
        if new not in expected and name in expected:
            # As from_pretrained: a name the model has is not renamed away from it.
            new, pattern = transformers_rename(name, [], [], prefix or None, expected)
        return new, pattern is not None

    return rename


def _with_prefix_rule(name: str, prefix: str, expected: Mapping[str, Any]) -> str:
    """Strip or add the base-model prefix when that gives one of the model's names."""
    if not prefix:
        return name
    if name.startswith(prefix + ".") and name[len(prefix) + 1:] in expected:
        return name[len(prefix) + 1:]
    if f"{prefix}.{name}" in expected:
        return f"{prefix}.{name}"
    return name


def _dot_natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key of transformers' loading order: numbers in names compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in name.split(".")]


def _tensor_of(item: Any) -> torch.Tensor:
    return item if isinstance(item, torch.Tensor) else item.tensor
