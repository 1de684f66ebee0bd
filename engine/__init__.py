"""Weightsmith's engine: edit PyTorch models and checkpoints with exact undo. Qt-free.

`Session` is imported on first use (PEP 562), so that `from engine.errors import ...`
and the other torch-free modules load without torch: the editor shows its window
before torch has finished importing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ArchError, EditError, FileError, WeightsmithError

if TYPE_CHECKING:
    from .session import Session

__all__ = ["ArchError", "EditError", "FileError", "Session", "WeightsmithError"]


def __getattr__(name: str) -> Any:
    if name == "Session":
        from .session import Session

        return Session
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
