"""The two tasks: classification (cross-entropy, accuracy) and regression (mean squared error).

Classes are along the output's last dimension: (batch, classes) with targets (batch,),
or (batch, length, classes) with targets (batch, length) for a sequence model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import EditError


def resolve_task(requested: str | None, integer_targets: bool, description: str) -> str:
    """The task of a run: the one asked for, else the one the targets suggest."""
    if requested is None:
        return "classification" if integer_targets else "regression"
    if requested == "classification" and not integer_targets:
        raise EditError(f"data: {description}: classification needs integer class labels; "
                        "these targets are floating-point (use task regression)")
    if requested == "regression" and integer_targets:
        raise EditError(f"data: {description}: regression needs floating-point targets; "
                        "these are class labels (use task classification)")
    return requested


def check_targets(task: str, logits: torch.Tensor, targets: torch.Tensor, description: str,
                  label_range: tuple[int, int] | None = None) -> None:
    """Raise EditError when the model's output and the targets cannot make a loss.

    Parameters
    ----------
    logits, targets : the model's output for a few samples, and their targets
    label_range : the smallest and largest label of the whole data (classification);
        taken from `targets` when None
    """
    out_shape, target_shape = list(logits.shape), list(targets.shape)
    if task == "classification":
        if logits.dim() < 2 or target_shape != out_shape[:-1]:
            raise EditError(f"data: {description}: targets of shape {target_shape[1:]} per "
                            f"sample do not fit the model's output {out_shape[1:]} "
                            "(classification wants one label per row of class scores)")
        classes = out_shape[-1]
        if label_range is None and targets.numel():
            label_range = int(targets.min()), int(targets.max())
        if label_range is not None and (label_range[0] < 0 or label_range[1] >= classes):
            raise EditError(f"data: {description}: labels must be in [0, {classes}) for a model "
                            f"with {classes} outputs; found {label_range[0]}..{label_range[1]}")
        return
    if targets.numel() != logits.numel():
        raise EditError(f"data: {description}: targets of shape {target_shape[1:]} per sample "
                        f"do not fit the model's output {out_shape[1:]}")


def compute_loss(task: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss of one batch (a 0-dim tensor on the batch's device)."""
    if task == "classification":
        if logits.dim() > 2:
            return F.cross_entropy(logits.flatten(0, -2), targets.flatten())
        return F.cross_entropy(logits, targets)
    return F.mse_loss(logits, targets.reshape(logits.shape).to(logits.dtype))


def batch_correct(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How many rows' top class is the target (a 0-dim tensor on the device, not synced).

    Three small operations; dividing by the batch's row count happens on the host when
    the value is read.
    """
    return (logits.argmax(-1) == targets).sum()
