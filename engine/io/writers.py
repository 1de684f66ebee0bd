"""Write a session's tensors to a file: kept as a thin wrapper of `save_session`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .readers import ALIASES_KEY
from .saving import save_session

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["ALIASES_KEY", "save_state_dict"]


def save_state_dict(session: Session, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write the session's state dict to `path` (format by extension), atomically.

    Raises
    ------
    FileError : unknown extension or the write failed (the old file is then intact)
    """
    save_session(session, path, metadata=metadata)
