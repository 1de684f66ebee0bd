"""A reversible switch of a Session between checkpoint mode and model mode.

Used by the `attach` edit: the whole document changes (a checkpoint's flat names
become a module tree), so views get one structure change of the root, announced
before and after like every other structure change. Undo and redo swap the very
same model and checkpoint objects back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from .changes import Change
from .checkpoint import CheckpointState

if TYPE_CHECKING:
    from .session import Session


class ModeChange(Change):
    """`session.model` and `session.checkpoint` replaced together (applied at once)."""

    kind = "structure"
    structure_path = ""

    def __init__(self, session: Session, model: nn.Module | None,
                 checkpoint: CheckpointState | None) -> None:
        if (model is None) == (checkpoint is None):
            raise ValueError("a document is exactly one of a model or a checkpoint")
        self.session = session
        self.names = ()
        self._other: tuple[nn.Module | None, CheckpointState | None] = (model, checkpoint)
        self._swap()

    def _swap(self) -> None:
        session = self.session
        live = (session.model, session.checkpoint)
        session.emit_structure("about", "")
        try:
            session.model, session.checkpoint = self._other
        finally:
            session.emit_structure("done", "")
        self._other = live

    undo = _swap
    redo = _swap
