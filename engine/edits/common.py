"""Helpers shared by edit families: writing values through a transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..changes import Transaction, ValueChange
from ..errors import EditError

if TYPE_CHECKING:
    from ..session import Session


def write_values(
    session: Session, tx: Transaction, name: str, values: torch.Tensor, index: Any = None
) -> None:
    """Write `values` into tensor `name` (or its region `index`), recording the old values.

    Parameters
    ----------
    values : broadcastable to the region; cast to the tensor's dtype and device
    """
    tensor = session.tensor(name)
    tx.add(ValueChange(tensor, index, tuple(session.aliases(name))))
    with torch.no_grad():
        values = values.to(device=tensor.device, dtype=tensor.dtype)
        if index is None:
            tensor.copy_(values)
        else:
            tensor[index] = values


def record_values(session: Session, tx: Transaction, name: str) -> torch.Tensor:
    """Record the whole tensor `name` for undo and return it, for an in-place edit."""
    tensor = session.tensor(name)
    tx.add(ValueChange(tensor, None, tuple(session.aliases(name))))
    return tensor


def require_float(op: str, field: str, name: str, tensor_dtype: torch.dtype) -> None:
    """Reject integer and bool tensors for edits that only make sense on floats."""
    if not (tensor_dtype.is_floating_point or tensor_dtype.is_complex):
        raise EditError(
            f"{op}.{field}: '{name}' is {str(tensor_dtype).removeprefix('torch.')}; "
            f"{op} applies to floating-point tensors"
        )
