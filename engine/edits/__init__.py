"""Every edit, registered by its `op`; `build_edit` turns a dict into a command."""

from __future__ import annotations

from . import attach, freeze, group, init, load, structure, tensor_ops, ties, train, values
from .base import EDIT_TYPES, Edit, build_edit

__all__ = ["EDIT_TYPES", "Edit", "attach", "build_edit", "freeze", "group", "init", "load",
           "structure", "tensor_ops", "ties", "train", "values"]
