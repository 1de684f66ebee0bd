"""Synthetic data for the Files benchmarks: a big sharded safetensors set, one huge tensor."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file


def make_sharded_set(folder: Path, size_gb: float, tensors: int,
                     shard_gb: float) -> tuple[Path, dict]:
    """A Hugging Face style sharded set of `tensors` float32 tensors, `size_gb` * 1e9 bytes.

    Reuses a set made before with the same parameters.
    """
    per_tensor = int(size_gb * 1e9 / tensors / 4)
    rows = max(int(per_tensor ** 0.5), 1)
    shape = (rows, per_tensor // rows)
    nbytes = shape[0] * shape[1] * 4
    per_shard = max(int(shard_gb * 1e9 // nbytes), 1)
    count = -(-tensors // per_shard)
    names = [f"layers.{i}.weight" for i in range(tensors)]
    info = {"tensors": tensors, "shape": list(shape), "shards": count,
            "bytes": nbytes * tensors, "largest": nbytes,
            "edit_target": names[min(tensors - 1, (count // 2) * per_shard + 1)]}
    marker = folder / "params.json"
    if marker.is_file() and json.loads(marker.read_text()) == info:
        return folder, info
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    weight_map = {}
    for shard in range(count):
        file_name = f"model-{shard + 1:05d}-of-{count:05d}.safetensors"
        chunk = names[shard * per_shard:(shard + 1) * per_shard]
        save_file({name: torch.randn(shape, generator=generator) for name in chunk},
                  str(folder / file_name), metadata={"format": "pt"})
        weight_map.update({name: file_name for name in chunk})
        print(f"  wrote {file_name}", flush=True)
    index = {"metadata": {"total_size": nbytes * tensors}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (folder / "config.json").write_text(json.dumps({"model_type": "synthetic"}))
    marker.write_text(json.dumps(info))
    return folder, info


def make_big_tensor(path: Path, gib: float) -> Path:
    """A .safetensors file with one float32 tensor of `gib` GiB (named 'big') and a small one."""
    columns = 32768
    rows = int(gib * 2**30 / 4 / columns)
    nbytes = rows * columns * 4
    header = {"__metadata__": {"format": "pt"},
              "big": {"dtype": "F32", "shape": [rows, columns], "data_offsets": [0, nbytes]},
              "small": {"dtype": "F32", "shape": [4], "data_offsets": [nbytes, nbytes + 16]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text)
        block = 1024
        for start in range(0, rows, block):
            count = min(block, rows - start)
            values = torch.arange(start * columns, (start + count) * columns,
                                  dtype=torch.float64).float()
            handle.write(values.numpy().tobytes())
        handle.write(torch.ones(4).numpy().tobytes())
    return path
