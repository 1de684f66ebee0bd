"""Checks shared by edit families."""

from __future__ import annotations

import torch

from ..document.rows import dtype_name
from ..errors import EditError


def require_float(op: str, field: str, name: str, tensor_dtype: torch.dtype) -> None:
    """Reject integer and bool tensors for edits that only make sense on floats."""
    if not (tensor_dtype.is_floating_point or tensor_dtype.is_complex):
        raise EditError(
            f"{op}.{field}: '{name}' is {dtype_name(tensor_dtype)}; "
            f"{op} applies to floating-point tensors"
        )
