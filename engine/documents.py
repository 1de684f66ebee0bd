"""Starting documents: a model from an architecture spec, with weights from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .arch import DEFAULT_SEED, build_model
from .errors import FileError
from .io import read_state_dict
from .session import Session


def strip_wrapper_prefixes(keys: list[str]) -> str:
    """The wrapper prefix shared by every key ("" when none), e.g. 'module._orig_mod.'."""
    from .io.opening import detect_prefix

    return detect_prefix(keys)


def load_weights(model: nn.Module, path: str | Path, *, assign: bool = False) -> None:
    """Load a weights file into `model` strictly, stripping DDP/compile prefixes.

    Raises
    ------
    FileError : the file is unreadable, or its names or shapes do not fit the model
    """
    stored = read_state_dict(path)
    prefix = strip_wrapper_prefixes(list(stored))
    if prefix:
        stored = {key[len(prefix):]: value for key, value in stored.items()}
    expected = model.state_dict()
    missing = [name for name in expected if name not in stored]
    unexpected = [name for name in stored if name not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensor(s) of the model missing (e.g. '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. '{unexpected[0]}')")
        raise FileError(path, "does not fit the architecture: " + "; ".join(parts))
    for name, tensor in expected.items():
        if tuple(tensor.shape) != tuple(stored[name].shape):
            raise FileError(path, f"'{name}' has shape {tuple(stored[name].shape)}, the model "
                            f"expects {tuple(tensor.shape)}")
    model.load_state_dict(stored, strict=True, assign=assign)


def model_session(arch: str, arch_args: dict[str, Any] | None = None,
                  weights: str | Path | None = None, *, meta: bool = False,
                  seed: int = DEFAULT_SEED) -> Session:
    """A Session over a model built from `arch`, with weights from `weights` if given.

    With `meta=True` and weights, tensors are assigned straight from the (memory-mapped)
    file; with `meta=True` and no weights, tensors have shapes but no data (listing only).
    """
    model = build_model(arch, arch_args, seed=seed, meta=meta)
    if weights is not None:
        load_weights(model, weights, assign=meta)
    session = Session(model)
    session.source = {"arch": arch, "arch_args": arch_args or None,
                      "weights": str(weights) if weights is not None else None}
    return session
