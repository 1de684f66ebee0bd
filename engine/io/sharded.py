"""Sharded sets: `model.safetensors.index.json` (or `pytorch_model.bin.index.json`) with
`{"metadata": {"total_size": N}, "weight_map": {tensor name: shard file}}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FileError
from .folder_files import resolve_inside
from .json_files import read_json

#: Hugging Face's shard names: model-00001-of-00003.safetensors
SHARD_NAME = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})(?P<suffix>\..+)$")


@dataclass
class ShardIndex:
    """A parsed index file.

    Attributes
    ----------
    path : the index file
    weight_map : tensor name -> shard file name, in the index's order
    metadata : the index's `metadata` object (total_size and anything else)
    shards : shard file names, sorted (model-00001 before model-00002)
    """

    path: Path
    weight_map: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.path.parent


def read_index(path: Path) -> ShardIndex:
    """Read and check an index file: JSON, a weight_map of text to shard files that exist
    beside it (no paths that leave the folder, no links that resolve outside it).

    Raises
    ------
    FileError : naming the index and the problem
    """
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("weight_map"), dict):
        raise FileError(path, "not a shard index (no 'weight_map' object)")
    weight_map = document["weight_map"]
    if not weight_map:
        raise FileError(path, "the weight_map is empty")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise FileError(path, "'metadata' must be an object")
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise FileError(path, f"weight_map['{name}'] must be a shard file name")
        if Path(shard).name != shard or shard in (".", ".."):
            raise FileError(path, f"weight_map['{name}'] = '{shard}' leaves the folder; "
                            "only file names beside the index are allowed")
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        if not (path.parent / shard).is_file() and not (path.parent / shard).is_symlink():
            raise FileError(path, f"shard '{shard}' is missing from {path.parent}")
        resolve_inside(path.parent / shard, path.parent, "shards")
    return ShardIndex(path, dict(weight_map), metadata, shards)


def shard_names(stem: str, suffix: str, count: int) -> list[str]:
    """Hugging Face names for `count` shards: `model-00001-of-00003.safetensors`, ...

    One shard is named `model.safetensors` (no numbering), as transformers writes it.
    """
    if count == 1:
        return [f"{stem}{suffix}"]
    return [f"{stem}-{index:05d}-of-{count:05d}{suffix}" for index in range(1, count + 1)]
