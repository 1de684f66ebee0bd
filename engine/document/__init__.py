"""Documents: a live model or a checkpoint's tensors, behind one interface.

`ModelDocument` and `CheckpointDocument` answer every question about what is edited
(names, tensors, aliases and ties, selection, totals, metadata) and make changes
through a transaction; `engine.session.Session` holds one, with its history and events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .rows import Summary, TensorRow, Totals, count, dtype_name, numel, shape_text

if TYPE_CHECKING:
    from .base import Document
    from .checkpoint import CheckpointDocument
    from .model import ModelDocument, TensorEntry

#: names imported on first use (PEP 562): they import torch, and the rows and trees do not,
#: so the editor's window can be built and painted before torch has loaded
_LAZY = {"Document": ".base", "CheckpointDocument": ".checkpoint", "ModelDocument": ".model",
         "TensorEntry": ".model"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'engine.document' has no attribute {name!r}")

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
        from .model import ModelDocument

        return ModelDocument(model, source, origin)
    from .checkpoint import CheckpointDocument

    return CheckpointDocument(checkpoint, source, origin)
