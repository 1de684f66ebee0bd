"""Read a state dict from a .pt/.pth/.bin/.ckpt or .safetensors file, safely.

Pickle-based files are always read with `weights_only=True`: a file that needs
arbitrary code to load is refused with a clear message, never loaded anyway.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from ..errors import FileError

#: keys under which training frameworks nest the model's state dict, most common first
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "ema", "model_ema",
               "state_dict_ema", "net", "network", "weights", "params")


def _is_state_dict(value: object) -> bool:
    return (isinstance(value, dict) and len(value) > 0
            and all(isinstance(k, str) for k in value)
            and all(isinstance(v, torch.Tensor) for v in value.values()))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the tensors of a checkpoint file (the first nested state dict if nested).

    Raises
    ------
    FileError : missing, unreadable, unsafe or not a checkpoint
    """
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "no such file" if not path.exists() else "not a file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise FileError(path, f"not a valid safetensors file ({error})") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False; that advice is unsafe for
        # a file from elsewhere, so it is not passed on.
        raise FileError(path, "refused: loading it would run code from the file (a pickled "
                        "object, not plain tensors)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        raise FileError(path, f"not a readable PyTorch checkpoint ({str(error).splitlines()[0]})") from None
    if _is_state_dict(data):
        return data
    if isinstance(data, dict):
        for key in NESTED_KEYS:
            if _is_state_dict(data.get(key)):
                return data[key]
        for value in data.values():
            if _is_state_dict(value):
                return value
    raise FileError(path, "holds no state dict (no mapping of names to tensors)")
