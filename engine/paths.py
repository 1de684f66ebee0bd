"""Dotted-name resolution and glob selection, each with validation and readable errors.

Names are PyTorch's own: `layer1.0.conv1.weight`. A module path may also use index
notation, `classifier[-1]` or `features[3].conv`, which is normalized to the canonical
dotted name (`classifier.6`) before it is recorded, so a recipe always holds names
that `model.get_submodule` understands.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from torch import nn

from .errors import EditError

_INDEX = re.compile(r"\[(-?\d+)\]")
_GLOB_CHARS = set("*?[")


def split_name(name: str) -> tuple[str, str]:
    """Split `a.b.weight` into (`a.b`, `weight`); a top-level name has parent ""."""
    parent, _, leaf = name.rpartition(".")
    return parent, leaf


def join_name(parent: str, leaf: str) -> str:
    """Join a parent path and a child name; the root's children have no prefix."""
    return f"{parent}.{leaf}" if parent else leaf


def is_glob(pattern: str) -> bool:
    """Tell whether `pattern` holds glob characters (`*`, `?`, `[`)."""
    return any(char in _GLOB_CHARS for char in pattern) and not _INDEX.search(pattern)


def _path_parts(path: str, field: str) -> list[str]:
    if not isinstance(path, str):
        raise EditError(f"{field}: expected a dotted name, got {type(path).__name__}")
    text = _INDEX.sub(lambda match: "." + match.group(1), path.strip())
    if text.startswith("."):
        text = text[1:]
    if text == "":
        return []
    parts = text.split(".")
    if any(part == "" for part in parts):
        raise EditError(f"{field}: '{path}' is not a valid dotted name")
    return parts


def resolve_module(model: nn.Module, path: str, field: str = "target") -> tuple[str, nn.Module]:
    """Find the submodule at `path` and return its canonical dotted name and the module.

    Parameters
    ----------
    model : the root module
    path : dotted name; "" is the root; `seq[-1]` and `seq.-1` count from the end
    field : the edit field named in error messages

    Raises
    ------
    EditError : when any part of the path does not exist
    """
    module = model
    canonical: list[str] = []
    for part in _path_parts(path, field):
        children = module._modules
        key = part
        if part not in children and part.lstrip("-").isdigit():
            keys = list(children.keys())
            position = int(part)
            if -len(keys) <= position < len(keys):
                key = keys[position]
        child = children.get(key)
        if child is None:
            where = ".".join(canonical) or "the model"
            raise EditError(f"{field}: '{path}' not found ({where} has no submodule '{part}')")
        module = child
        canonical.append(key)
    return ".".join(canonical), module


def match_names(patterns: Iterable[str], names: Iterable[str]) -> dict[str, list[str]]:
    """Match each pattern (exact name or glob) against `names`; return the hits per pattern."""
    names = list(names)
    result: dict[str, list[str]] = {}
    for pattern in patterns:
        if is_glob(pattern):
            result[pattern] = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
        else:
            result[pattern] = [name for name in names if name == pattern]
    return result


def under(name: str, prefix: str) -> bool:
    """Tell whether `name` is `prefix` itself or lies below it ("" holds everything)."""
    return prefix == "" or name == prefix or name.startswith(prefix + ".")
