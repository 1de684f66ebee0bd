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
            "mismatched": mismatched, "dtype_from_file": dtype_from_file}


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
    return problems
