"""Compare an exported artifact's outputs with the live model's.

The relative difference of one output tensor is the largest absolute difference
divided by the largest magnitude of the live model's output (the infinity-norm
relative error, `max|a - r| / max|r|`): unlike an element-wise ratio it does not
explode where an output is near zero, and it reads as "how large the error is
next to the values the model produces". A run's figures are the largest over its
output tensors. Integer and boolean outputs must match exactly; NaN where the live
model also gives NaN is equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils import _pytree as pytree

from ..errors import ExportError


@dataclass(frozen=True)
class Difference:
    """How far the artifact is from the live model at one batch size."""

    batch: int
    max_abs: float
    max_rel: float
    outputs: int  # output tensors compared

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "max_abs": self.max_abs, "max_rel": self.max_rel,
                "outputs": self.outputs}


def output_tensors(output: Any) -> list[torch.Tensor]:
    """Every tensor in a model's output (a tensor, tuple, dict or output object), in order."""
    if hasattr(output, "to_tuple") and callable(output.to_tuple):
        output = output.to_tuple()  # a Hugging Face ModelOutput: its non-None fields
    return [leaf for leaf in pytree.tree_leaves(output) if isinstance(leaf, torch.Tensor)]


def compare(live: Sequence[torch.Tensor], exported: Sequence[torch.Tensor], batch: int,
            fmt: str) -> Difference:
    """The differences of `exported` from `live`, output by output.

    Raises
    ------
    ExportError : the outputs differ in number, shape or kind (names the output)
    """
    if len(live) != len(exported):
        raise ExportError(f"{fmt}: verification failed: the export gives {len(exported)} "
                          f"output tensor(s), the model {len(live)} (batch {batch})")
    max_abs = 0.0
    max_rel = 0.0
    for index, (reference, actual) in enumerate(zip(live, exported, strict=True)):
        reference = reference.detach().cpu()
        actual = actual.detach().cpu()
        if tuple(reference.shape) != tuple(actual.shape):
            raise ExportError(f"{fmt}: verification failed: output {index} has shape "
                              f"{list(actual.shape)}, the model's {list(reference.shape)} "
                              f"(batch {batch})")
        if not (reference.is_floating_point() or reference.is_complex()):
            if not torch.equal(reference, actual.to(reference.dtype)):
                raise ExportError(f"{fmt}: verification failed: output {index} "
                                  f"({reference.dtype}) differs from the model's (batch {batch})")
            continue
        absolute, relative = tensor_difference(reference, actual)
        max_abs = max(max_abs, absolute)
        max_rel = max(max_rel, relative)
    return Difference(batch, max_abs, max_rel, len(live))


def tensor_difference(reference: torch.Tensor, actual: torch.Tensor) -> tuple[float, float]:
    """(max absolute difference, that divided by the reference's largest magnitude).

    Computed in float64. NaN in both at the same place counts as equal; NaN or inf in
    only one is an infinite difference.
    """
    reference = reference.detach()
    reference = reference.to(torch.float64) if not reference.is_complex() else reference
    actual = actual.detach().to(reference.dtype)
    both_nan = torch.isnan(reference) & torch.isnan(actual)
    same_inf = torch.isinf(reference) & (reference == actual)
    difference = (actual - reference).abs()
    difference = torch.where(both_nan | same_inf, torch.zeros_like(difference), difference)
    difference = torch.nan_to_num(difference, nan=float("inf"))
    absolute = float(difference.max()) if difference.numel() else 0.0
    finite = reference[torch.isfinite(reference)]
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    if absolute == 0.0:
        return 0.0, 0.0
    relative = absolute / scale if scale > 0.0 else float("inf")
    return absolute, relative


def check_within(difference: Difference, tolerance: float, fmt: str) -> None:
    """Raise ExportError when the relative difference is above `tolerance`."""
    if not difference.max_rel <= tolerance:
        raise ExportError(
            f"{fmt}: verification failed: the export differs from the live model by "
            f"{difference.max_rel:.3g} (relative; max abs {difference.max_abs:.3g}) at batch "
            f"{difference.batch}, above the tolerance {tolerance:.3g}; nothing was written")
