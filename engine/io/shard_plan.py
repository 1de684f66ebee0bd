"""Which tensors go in which shard: kept as opened, or cut by a maximum shard size."""

from __future__ import annotations

import re

from ..errors import FileError
from .stored_items import StoredItem

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
          "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(value: int | str, field: str = "max_shard_size") -> int:
    """Bytes from an int or a text like '5GB' (10**9, as Hugging Face counts) or '2GiB'."""
    if isinstance(value, bool):
        raise FileError(field, "expected a size such as 5GB or a number of bytes")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            raise FileError(field, f"'{value}' is not a size (use e.g. 500MB, 5GB, 2GiB)")
        size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise FileError(field, f"must be more than 0 bytes, got {value}")
    return size


def by_size(items: list[StoredItem], max_bytes: int) -> list[list[StoredItem]]:
    """Greedy shards in document order; a tensor bigger than the limit gets a shard alone."""
    shards: list[list[StoredItem]] = []
    current: list[StoredItem] = []
    size = 0
    for item in items:
        if current and size + item.nbytes > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(item)
        size += item.nbytes
    if current:
        shards.append(current)
    return shards


def as_opened(items: list[StoredItem], shard_of: dict[str, str],
              shard_order: list[str]) -> tuple[list[list[StoredItem]], list[str]]:
    """Shards as the source had them: each tensor in the shard it came from.

    A tensor with no known shard (new, or renamed from one that was) joins the shard of
    the tensor before it in document order. Returns the shards and their source names
    (shards that end up empty are dropped).
    """
    groups: dict[str, list[StoredItem]] = {name: [] for name in shard_order}
    previous = shard_order[0] if shard_order else ""
    for item in items:
        shard = _known_shard(item, shard_of)
        if shard not in groups:
            shard = previous
        groups.setdefault(shard, []).append(item)
        previous = shard
    names = [name for name, group in groups.items() if group]
    return [groups[name] for name in names], names


def _known_shard(item: StoredItem, shard_of: dict[str, str]) -> str | None:
    source = item.source
    if source is not None:
        return source.file.path.name
    if getattr(item.row.file_source, "file", None) is not None:
        return item.row.file_source.file.path.name
    for name in [item.name, *item.aliases]:
        if name in shard_of:
            return shard_of[name]
    return None
