"""Checks shared by edit families."""

from __future__ import annotations

import torch

from ..errors import EditError


def require_float(op: str, field: str, name: str, tensor_dtype: torch.dtype) -> None:
    """Reject integer and bool tensors for edits that only make sense on floats."""
    if not (tensor_dtype.is_floating_point or tensor_dtype.is_complex):
        raise EditError(
            f"{op}.{field}: '{name}' is {str(tensor_dtype).removeprefix('torch.')}; "
            f"{op} applies to floating-point tensors"
        )
