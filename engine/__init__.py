"""Weightsmith's engine: edit PyTorch models and checkpoints with exact undo. Qt-free."""

from __future__ import annotations

from .errors import ArchError, EditError, FileError, WeightsmithError
from .session import Session

__all__ = ["ArchError", "EditError", "FileError", "Session", "WeightsmithError"]
