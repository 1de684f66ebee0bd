"""Every edit, registered by its `op`; `build_edit` turns a dict into a command.

The names below are the edits' public face for the GUI and the CLI (an import-linter
contract keeps them out of the modules behind it): the registry, the initializers an
`init` knows, and where a model's classifier is.
"""

from __future__ import annotations

from . import (
    attach,
    freeze,
    group,
    init,
    layout,
    load,
    lora,
    merge,
    structure,
    tensor_ops,
    ties,
    train,
    values,
)
from .base import EDIT_TYPES, Edit, build_edit
from .init import INITIALIZERS, METHODS, initializer_parameters, is_random
from .structure import find_head

__all__ = ["EDIT_TYPES", "INITIALIZERS", "METHODS", "Edit", "attach", "build_edit", "find_head",
           "freeze", "group", "init", "initializer_parameters", "is_random", "layout", "load",
           "lora", "merge", "structure", "tensor_ops", "ties", "train", "values"]
