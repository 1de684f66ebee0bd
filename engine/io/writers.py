"""Write a session's tensors as .safetensors or .pt/.pth, atomically, ties stored once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import FileError
from .atomic import atomic_path

if TYPE_CHECKING:
    from ..session import Session

#: metadata key holding {alias name: stored name} for tied tensors
ALIASES_KEY = "weightsmith.aliases"


def dedupe_ties(tensors: dict[str, torch.Tensor],
                groups: list[list[str]]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Keep one name per tie group; return the tensors to store and {alias: stored name}."""
    aliases: dict[str, str] = {}
    for group in groups:
        present = [name for name in group if name in tensors]
        for alias in present[1:]:
            aliases[alias] = present[0]
    return {name: t for name, t in tensors.items() if name not in aliases}, aliases


def save_state_dict(session: Session, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write the session's state dict to `path` (format by extension), atomically.

    Raises
    ------
    FileError : unknown extension or the write failed (the old file is then intact)
    """
    tensors = session.state_dict()
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        stored, aliases = dedupe_ties(tensors, session.tie_groups())
        meta: dict[str, Any] = {"format": "pt", **(metadata or {})}
        if aliases:
            meta[ALIASES_KEY] = json.dumps(aliases)
        contiguous = {name: t.detach().to("cpu").contiguous() for name, t in stored.items()}
        try:
            with atomic_path(path) as temp:
                save_file(contiguous, str(temp), metadata=meta)
        except OSError as error:
            raise FileError(path, f"could not be written ({error.strerror or error})") from None
        return
    if suffix in (".pt", ".pth", ".bin"):
        try:
            with atomic_path(path) as temp:
                torch.save({name: t.detach() for name, t in tensors.items()}, temp)
        except OSError as error:
            raise FileError(path, f"could not be written ({error.strerror or error})") from None
        return
    raise FileError(path, "unknown output format (use .safetensors, .pt or .pth)")
