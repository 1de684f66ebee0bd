"""A meta-device twin of a live model: the same modules and names, no data.

Tracing the twin reads no weight and allocates none, so a model larger than memory
graphs as fast as a small one, and the live model is never touched (no forward pass
on it, no mode changed, no hook left). Ties survive: two names of one Parameter are
two names of one meta Parameter in the twin.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def meta_twin(model: nn.Module) -> nn.Module | None:
    """A deep copy of `model` whose parameters and buffers are on the meta device.

    Returns None when the model cannot be copied (a module holding a lock, an open
    file, a tensor subclass without a meta form): callers then trace the live model.
    """
    memo: dict[int, object] = {}
    try:
        for tensor in [*model.parameters(), *model.buffers()]:
            if id(tensor) in memo:
                continue
            twin = torch.empty_like(tensor, device="meta")
            if isinstance(tensor, nn.Parameter):
                twin = nn.Parameter(twin, requires_grad=tensor.requires_grad)
            memo[id(tensor)] = twin
        # deepcopy looks every object up in `memo` first: the tensors are replaced, not
        # copied, and everything else (modules, configs, small attributes) is copied.
        return copy.deepcopy(model, memo)
    except Exception:  # any object may refuse to be copied; tracing the live model is fine
        return None


def alias_names(model: nn.Module) -> dict[str, tuple[str, ...]]:
    """For every parameter and buffer name, all names bound to the same tensor, in order.

    The first name of each group is the canonical one, as in `Session.tensor_names()`.
    """
    groups: dict[int, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for registry in (module._parameters, module._buffers):
            for leaf, tensor in registry.items():
                if tensor is not None:
                    name = f"{path}.{leaf}" if path else leaf
                    groups.setdefault(id(tensor), []).append(name)
    return {name: tuple(names) for names in groups.values() for name in names}


def tensor_kinds(model: nn.Module) -> dict[str, str]:
    """'parameter' or 'buffer' for every tensor name (aliases included)."""
    kinds: dict[str, str] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for kind, registry in (("parameter", module._parameters), ("buffer", module._buffers)):
            for leaf, tensor in registry.items():
                if tensor is not None:
                    kinds[f"{path}.{leaf}" if path else leaf] = kind
    return kinds


def module_types(model: nn.Module) -> dict[str, str]:
    """The class name of every module path (aliases of shared modules included)."""
    return {path: type(module).__name__
            for path, module in model.named_modules(remove_duplicate=False)}
