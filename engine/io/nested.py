"""Find the state dicts nested in a loaded checkpoint (Lightning, `model`, `ema`, ...).

A candidate is named by its key path joined with '/': `state_dict`, `model`,
`callbacks/EMA`; the empty name is a file that is itself a state dict. Candidates are
listed in a fixed order: the usual keys first (most common first), then any other key
in file order, then one level deeper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

#: keys under which training frameworks nest the model's state dict, most common first
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "ema", "model_ema",
               "state_dict_ema", "ema_state_dict", "net", "network", "weights", "params")
SEPARATOR = "/"


def is_state_dict(value: Any) -> bool:
    """A non-empty mapping of text to tensors."""
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(key, str) for key in value)
            and all(isinstance(item, torch.Tensor) for item in value.values()))


def is_candidate(value: Any) -> bool:
    """A state dict, or a whole module (only in files loaded with trust)."""
    return is_state_dict(value) or isinstance(value, torch.nn.Module)


def find_candidates(data: Any) -> list[str]:
    """Names of every state dict (or module) in `data`, most likely first."""
    if is_candidate(data):
        return [""]
    if not isinstance(data, Mapping):
        return []
    found: list[str] = []
    keys = [key for key in NESTED_KEYS if key in data]
    keys += [key for key in data if isinstance(key, str) and key not in NESTED_KEYS]
    deeper: list[str] = []
    for key in keys:
        value = data[key]
        if is_candidate(value):
            found.append(key)
        elif isinstance(value, Mapping):
            deeper += [f"{key}{SEPARATOR}{inner}" for inner in value
                       if isinstance(inner, str) and is_candidate(value[inner])]
    return found + deeper


def key_path(name: str) -> tuple[str, ...]:
    """('callbacks', 'EMA') for 'callbacks/EMA'; () for the empty name."""
    return tuple(name.split(SEPARATOR)) if name else ()


def get_path(data: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` in nested mappings."""
    for key in path:
        data = data[key]
    return data


def replace_path(data: Any, path: tuple[str, ...], value: Any) -> Any:
    """A shallow copy of `data` with the value at `path` replaced (the original is untouched)."""
    if not path:
        return value
    try:
        copy = type(data)(data)  # keeps an OrderedDict an OrderedDict
    except Exception:
        copy = dict(data)
    copy[path[0]] = replace_path(data[path[0]], path[1:], value)
    return copy


def loose_tensors(data: Any) -> dict[str, torch.Tensor]:
    """The tensor entries of a mapping that also holds other things (`{"w": t, "step": 3}`)."""
    if not isinstance(data, Mapping):
        return {}
    return {key: value for key, value in data.items()
            if isinstance(key, str) and isinstance(value, torch.Tensor)}
