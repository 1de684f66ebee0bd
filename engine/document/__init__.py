"""Documents: a live model or a checkpoint's tensors, behind one interface.

`ModelDocument` and `CheckpointDocument` answer every question about what is edited
(names, tensors, aliases and ties, selection, totals, metadata) and make changes
through a transaction; `engine.session.Session` holds one, with its history and events.
"""

from __future__ import annotations

from typing import Any

from .base import Document
from .checkpoint import CheckpointDocument
from .model import ModelDocument, TensorEntry
from .rows import Summary, TensorRow, Totals, count, dtype_name, numel, shape_text

__all__ = ["CheckpointDocument", "Document", "ModelDocument", "Summary", "TensorEntry", "TensorRow",
           "Totals", "count", "dtype_name", "make_document", "numel", "shape_text"]


def make_document(model: Any = None, checkpoint: Any = None, *,
                  source: dict[str, Any] | None = None, origin: Any = None) -> Document:
    """The document of exactly one of a module or a checkpoint (state or tensors by name).

    Raises
    ------
    TypeError : both or neither given, or `model` is no nn.Module
    """
    if (model is None) == (checkpoint is None):
        raise TypeError("Session needs exactly one of a model or a checkpoint")
    if model is not None:
        return ModelDocument(model, source, origin)
    return CheckpointDocument(checkpoint, source, origin)
