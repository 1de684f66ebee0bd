"""Write .pt/.pth/.bin files with torch.save: a state dict (ties as shared storage), the
original wrapper dict put back around it, or a whole model on request.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import nested

if TYPE_CHECKING:
    from ..document import Document


def state_dict_of(document: Document) -> dict[str, Any]:
    """Name -> tensor in document order; tied names map to one tensor (one storage on disk)."""
    return {name: tensor.detach() for name, tensor in document.state_dict().items()}


def wrapped(document: Document, payload: Any, include_extras: bool) -> tuple[Any, bool]:
    """Put `payload` back where the opened checkpoint held its state dict.

    Returns the object to save and whether a wrapper was used.
    """
    origin = document.origin
    if not include_extras or origin is None or origin.wrapper is None:
        return payload, False
    if document.source.get("loose"):
        extras = {key: value for key, value in origin.wrapper.items()
                  if not isinstance(value, torch.Tensor)}
        return {**extras, **payload}, True
    return nested.replace_path(origin.wrapper, origin.key_path, payload), True


def _held_a_module(document: Document) -> bool:
    """The opened (trusted) checkpoint held a whole module where the weights were: put the
    edited module back there, so the file keeps its shape.

    Such a file always opens as a model document (`read_document` makes one of the module
    it held), so the document that has this origin has a module to put back.
    """
    origin = document.origin
    if origin is None or origin.wrapper is None or not origin.key_path:
        return False
    return isinstance(nested.get_path(origin.wrapper, origin.key_path), torch.nn.Module)


def save_pt(document: Document, target: Path, *, whole_model: bool = False,
            include_extras: bool = True) -> bool:
    """torch.save the document to `target` (a temporary path the caller commits).

    Returns whether the original wrapper (epoch, optimizer state...) was written too.
    """
    payload: Any = document.model if whole_model or _held_a_module(document) \
        else state_dict_of(document)
    obj, used_wrapper = wrapped(document, payload, include_extras)
    torch.save(obj, target)
    return used_wrapper
