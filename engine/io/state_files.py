"""Read a state dict from any supported checkpoint, safely (used by the `load` edit).

Pickle-based files are always read with `weights_only=True`: a file that needs
arbitrary code to load is refused with a clear message, never loaded anyway.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import formats
from .nested import NESTED_KEYS
from .readers import read_detected

__all__ = ["NESTED_KEYS", "read_state_dict"]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the tensors of a checkpoint file or folder (the first nested state dict if nested).

    Tensors of safetensors files are memory-mapped (read on first touch); tied names
    map to the same tensor object.

    Raises
    ------
    FileError : missing, unreadable, damaged, unsafe or not a checkpoint
    """
    loaded = read_detected(formats.detect(path))
    return {name: slot.tensor for name, slot in loaded.state.entries.items()}
