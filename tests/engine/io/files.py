"""Checkpoint files built in the tests themselves: tiny models, synthetic tensors."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from tests.models import MLP, TiedLM, seeded


def mixed_tensors() -> dict[str, torch.Tensor]:
    """Tensors of several dtypes and shapes, a scalar and an empty one included."""
    generator = torch.Generator().manual_seed(3)
    return {
        "a.weight": torch.randn(4, 3, generator=generator),
        "a.bias": torch.randn(4, generator=generator).half(),
        "b.steps": torch.tensor(7, dtype=torch.int64),
        "b.mask": torch.tensor([True, False, True]),
        "c.bf": torch.randn(2, 2, generator=generator).bfloat16(),
        "c.empty": torch.zeros(0, 3),
        "c.bytes": torch.arange(5, dtype=torch.uint8),
    }


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor] | None = None,
                      metadata: dict[str, str] | None = None) -> Path:
    save_file(tensors if tensors is not None else mixed_tensors(), str(path),
              metadata=metadata or {"format": "pt"})
    return path


def raw_safetensors(path: Path, header: Any, data: bytes = b"",
                    length: int | None = None) -> Path:
    """A safetensors file with any header (even a broken one) and payload."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(text) if length is None else length
    path.write_bytes(struct.pack("<Q", size) + text + data)
    return path


def mlp_state() -> dict[str, torch.Tensor]:
    return seeded(MLP).state_dict()


def tied_state() -> dict[str, torch.Tensor]:
    return seeded(TiedLM).state_dict()


def assert_same_tensors(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    """Same names, shapes, dtypes and bytes."""
    assert sorted(left) == sorted(right)
    for name, tensor in left.items():
        other = right[name]
        assert tensor.dtype == other.dtype, name
        assert tuple(tensor.shape) == tuple(other.shape), name
        assert torch.equal(as_bytes(tensor), as_bytes(other)), name


def as_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as a flat uint8 tensor."""
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8)


def session_tensors(session: Any) -> dict[str, torch.Tensor]:
    return {name: session.document.tensor(name) for name in session.document.tensor_names()}
