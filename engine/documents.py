"""Starting documents: a model from an architecture spec, with weights from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .arch import DEFAULT_SEED, build_model
from .session import Session


def model_session(arch: str, arch_args: dict[str, Any] | None = None,
                  weights: str | Path | None = None, *, meta: bool = False,
                  seed: int = DEFAULT_SEED, strict: bool = True) -> Session:
    """A Session over a model built from `arch`, with weights from `weights` if given.

    Weights are read the way every file is (`Session.open` with the architecture: safely,
    strictly unless `strict=False`, a DDP/compile prefix stripped when the names need
    it). Without weights, `meta=True` builds shapes without data (a listing only).

    Raises
    ------
    ArchError : the architecture cannot be built
    FileError : the weights file is unreadable or does not fit the architecture
    """
    if weights is not None:
        session = Session.open(weights, arch=arch, arch_args=arch_args, seed=seed,
                               strict=strict)
        session.source["weights"] = str(weights)
        return session
    session = Session(build_model(arch, arch_args, seed=seed, meta=meta))
    session.source = {"arch": arch, "arch_args": arch_args or None, "weights": None}
    return session
