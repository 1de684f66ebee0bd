"""Read .pt/.pth/.bin/.ckpt files with `torch.load(weights_only=True)`, never anything else
unless the user trusts the file.

`weights_only=True` is passed explicitly on every call. A file that needs more than
tensors and plain containers to load (a whole pickled model, a Lightning checkpoint
holding custom objects, a TorchScript archive) is refused with a `FileError` that
lists the globals it would import; torch's own advice to pass `weights_only=False`
is never passed on. With `trust=True` the file is loaded with `weights_only=False`
(TorchScript: `torch.jit.load`), because the user asked for it.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import FileError
from .torch_formats import is_zip_checkpoint


def load_pickle(path: Path, *, trust: bool = False) -> Any:
    """`torch.load` the file safely (memory-mapped where the format allows).

    Parameters
    ----------
    trust : load with `weights_only=False` (runs code from the file); only when the
        user explicitly asked

    Raises
    ------
    FileError : unreadable, damaged, or needing code to load without `trust`
    """
    from .trust import allocation_problem, code_listing, refusal_message

    mmap = is_zip_checkpoint(path)
    if not mmap:
        _check_legacy_start(path)
    if not trust:
        # weights_only runs no code, but its allowed calls could still allocate without
        # bound: checked on the opcodes before anything is loaded.
        problem = allocation_problem(path)
        if problem is not None:
            raise FileError(path, problem)
    try:
        with _quiet():
            return torch.load(path, map_location="cpu", weights_only=not trust, mmap=mmap)
    except pickle.UnpicklingError as error:
        if not trust and "weights only" in str(error).lower():
            listing = code_listing(path)
            if listing.needs_trust or listing.undetermined:
                raise FileError(path, refusal_message(path)) from None
            raise FileError(path, "not a readable PyTorch checkpoint (damaged, or not written "
                            "by torch.save)") from None
        raise FileError(path, f"not a readable PyTorch checkpoint ({_first_line(error)})") from None
    except MemoryError:
        raise FileError(path, "not a readable PyTorch checkpoint (it asks for more memory "
                        "than there is; damaged?)") from None
    except FileError:
        raise
    except Exception as error:  # torch reports damage with many exception types
        raise FileError(path, f"not a readable PyTorch checkpoint ({_first_line(error)})") from None


def _check_legacy_start(path: Path) -> None:
    """A file that is not a zip archive must start as torch.save's legacy pickles do."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise FileError(path, f"cannot be read ({error.strerror or error})") from None
    if head[:1] != b"\x80":
        text = all(32 <= byte < 127 or byte in b"\t\n\r" for byte in head)
        shown = (f"the text {head.decode('ascii').strip()[:12]!r}; a text file?" if text
                 else f"the bytes {head[:8].hex(' ')}")
        raise FileError(path, "not a readable PyTorch checkpoint: neither a zip archive nor "
                        f"a pickle (it starts with {shown})")


def load_torchscript(path: Path) -> torch.nn.Module:
    """`torch.jit.load` a TorchScript archive on the CPU (the caller checked trust)."""
    try:
        with _quiet():
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        problem = _first_line(error)
        raise FileError(path, f"not a loadable TorchScript archive ({problem})") from None


@contextlib.contextmanager
def _quiet():
    # torch warns about deprecated formats and TorchScript; the user cannot act on those
    # warnings here, and tests run with warnings as errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _first_line(error: BaseException) -> str:
    """The first line of an error, with torch's unsafe `weights_only=False` advice cut."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "weights_only" in text:
        text = "its contents are not plain tensors"
    return text[:300]
