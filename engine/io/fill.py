"""Put a checkpoint's tensors into a freshly built model, keeping its ties, with a report.

Used when a file is opened with an architecture and by the `attach` edit. The file's
tensors are assigned (not copied): the model's parameters become the file's tensors,
memory-mapped and in the file's dtype, so opening a big checkpoint costs no copy.
Names the model ties (one Parameter under two names) get one tensor, even when the
file stored it once (Hugging Face files leave out `lm_head.weight`); a tensor that
the file shares between names the model keeps apart is copied, so that an edit of
one never changes the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..checkpoint import Slot


def model_groups(model: nn.Module) -> list[list[tuple[str, nn.Module, str, str]]]:
    """The model's persistent tensors grouped by object: [(name, owner, leaf, kind)]."""
    groups: dict[int, list[tuple[str, nn.Module, str, str]]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for kind, registry in (("parameter", module._parameters), ("buffer", module._buffers)):
            for leaf, tensor in registry.items():
                if tensor is None:
                    continue
                if kind == "buffer" and leaf in module._non_persistent_buffers_set:
                    continue
                name = f"{path}.{leaf}" if path else leaf
                groups.setdefault(id(tensor), []).append((name, module, leaf, kind))
    return list(groups.values())


def fill_model(model: nn.Module, stored: Mapping[str, Slot | torch.Tensor],
               frozen: set[str] | None = None) -> dict[str, Any]:
    """Assign the stored tensors to the model's parameters and buffers, in place.

    Parameters
    ----------
    model : a model nobody else uses yet (its tensors are replaced)
    stored : name -> Slot or tensor; Slots are read here
    frozen : names whose `requires_grad` is set to False (a saved freeze state)

    Returns
    -------
    The report: `loaded`, `missing` (model names the file lacks; they keep their
    initial values), `unexpected` (file names the model lacks), `mismatched` (same
    name, other shape; kept at initial values), `dtype_from_file` (names whose dtype
    differs from the model's default and was taken from the file).
    """
    frozen = frozen or set()
    used: set[str] = set()
    conflicts: list[dict[str, str]] = []
    assigned: set[tuple[int, int]] = set()
    loaded: list[str] = []
    missing: list[str] = []
    mismatched: list[dict[str, Any]] = []
    dtype_from_file: list[str] = []
    for group in model_groups(model):
        names = [name for name, *_ in group]
        key = next((name for name in names if name in stored), None)
        used.update(name for name in names if name in stored)
        if key is None:
            missing += names
            continue
        _, owner, leaf, kind = group[0]
        old = owner._parameters[leaf] if kind == "parameter" else owner._buffers[leaf]
        item = stored[key]
        shape = item.shape if isinstance(item, Slot) else tuple(item.shape)
        if tuple(shape) != tuple(old.shape):
            mismatched.append({"name": names[0], "file_key": key, "file_shape": list(shape),
                               "model_shape": list(old.shape)})
            continue
        tensor = item.tensor if isinstance(item, Slot) else item
        tensor = tensor.detach()
        conflicts += _tie_conflicts(names, key, tensor, stored)
        if tensor.numel() and _storage_key(tensor) in assigned:
            tensor = tensor.clone()  # shared in the file, separate in the model
        if tensor.numel():
            assigned.add(_storage_key(tensor))
        if tensor.dtype != old.dtype:
            dtype_from_file.append(names[0])
        new = _wrap(tensor, old, kind, frozen.isdisjoint(names))
        for _, group_owner, group_leaf, group_kind in group:
            if group_kind == "parameter":
                group_owner._parameters[group_leaf] = new
            else:
                group_owner._buffers[group_leaf] = new
        loaded += names
    unexpected = [name for name in stored if name not in used]
    return {"loaded": loaded, "missing": missing, "unexpected": unexpected,
            "mismatched": mismatched, "dtype_from_file": dtype_from_file,
            "tie_conflicts": conflicts}


def _tie_conflicts(names: list[str], key: str, tensor: torch.Tensor,
                   stored: Mapping[str, Slot | torch.Tensor]) -> list[dict[str, str]]:
    """Other names of a model tie group that the file holds with other values: only one
    value can be kept (`key`'s), so the others are reported, not dropped silently."""
    found = []
    for name in names:
        if name == key or name not in stored:
            continue
        item = stored[name]
        other = item.tensor if isinstance(item, Slot) else item
        if tuple(other.shape) != tuple(tensor.shape) or not torch.equal(other.detach(), tensor):
            found.append({"name": name, "kept": key})
    return found


def load_checkpoint(model: nn.Module, stored: Mapping[str, Slot | torch.Tensor],
                    frozen: set[str] | None = None, *, hf: bool = False) -> dict[str, Any]:
    """Put a checkpoint into a freshly built model, as its user's loader would.

    With `hf` (a transformers model built from a folder's config.json) the names are
    matched, ties kept or broken, and missing/unexpected names ignored the way
    `from_pretrained` does (see `engine.io.hf_loading`); otherwise names must match
    the model's `state_dict()` names, as for `load_state_dict`.

    Returns
    -------
    The report of `fill_model`, plus with `hf`: `ignored` ([{"name", "kind", "reason"}]),
    `renamed` ([[file name, model name]]), `untied` (names), `needs_conversion` (file
    names that need one of transformers' tensor conversions).
    """
    if not hf:
        return fill_model(model, stored, frozen)
    from . import hf_loading

    matched = hf_loading.match_names(model, stored)
    untied = hf_loading.untie_differing(model, matched.stored)
    report = fill_model(model, matched.stored, frozen)
    hf_loading.apply_ignores(model, report)
    conversion = set(matched.needs_conversion)
    report["unexpected"] = [name for name in report["unexpected"] if name not in conversion]
    report.update(renamed=matched.renamed, untied=untied,
                  needs_conversion=matched.needs_conversion)
    return report


def _wrap(tensor: torch.Tensor, old: torch.Tensor, kind: str, trainable: bool) -> torch.Tensor:
    if kind != "parameter":
        return tensor
    can_grad = tensor.is_floating_point() or tensor.is_complex()
    return nn.Parameter(tensor, requires_grad=bool(old.requires_grad and trainable and can_grad))


def _storage_key(tensor: torch.Tensor) -> tuple[int, int]:
    return tensor.untyped_storage().data_ptr(), tensor.storage_offset()


def report_problems(report: dict[str, Any]) -> list[str]:
    """Short texts for what did not fit, for an error message or a notice."""
    problems = []
    if report["missing"]:
        problems.append(f"{len(report['missing'])} tensor(s) of the model missing from the file "
                        f"(e.g. '{report['missing'][0]}')")
    if report["unexpected"]:
        problems.append(f"{len(report['unexpected'])} unexpected in the file "
                        f"(e.g. '{report['unexpected'][0]}')")
    if report["mismatched"]:
        first = report["mismatched"][0]
        problems.append(f"{len(report['mismatched'])} with another shape (e.g. '{first['name']}': "
                        f"file {tuple(first['file_shape'])}, model {tuple(first['model_shape'])})")
    if report.get("tie_conflicts"):
        first = report["tie_conflicts"][0]
        problems.append(f"{len(report['tie_conflicts'])} tied in the model but different in "
                        f"the file (e.g. '{first['name']}'; kept '{first['kept']}')")
    if report.get("needs_conversion"):
        problems.append(f"{len(report['needs_conversion'])} need one of transformers' tensor "
                        f"conversions (e.g. '{report['needs_conversion'][0]}'); load the "
                        "folder with transformers and save it again")
    return problems


def report_notes(report: dict[str, Any]) -> list[str]:
    """Lines about what a load ignored or adapted on purpose, for the user to read."""
    notes = []
    ignored = report.get("ignored") or []
    if ignored:
        reasons: dict[tuple[str, str], list[str]] = {}
        for item in ignored:
            reasons.setdefault((item["kind"], item["reason"]), []).append(item["name"])
        for (kind, reason), names in reasons.items():
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3
                                            else "")
            what = "of the file" if kind == "unexpected" else "missing from the file"
            notes.append(f"ignored {len(names)} tensor(s) {what}, as transformers does: "
                         f"{shown} ({reason})")
    renamed = report.get("renamed") or []
    if renamed:
        old, new = renamed[0]
        notes.append(f"{len(renamed)} file name(s) renamed as transformers does (e.g. "
                     f"'{old}' -> '{new}')")
    untied = report.get("untied") or []
    if untied:
        notes.append(f"untied {', '.join(untied)}: the file holds it with other values than "
                     "the tensor the config ties it to (as transformers does)")
    return notes
