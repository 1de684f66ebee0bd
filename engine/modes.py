"""Train/eval modes: BatchNorm layers a `freeze` marked stay in eval mode.

A BatchNorm layer keeps moving its running statistics in train mode even when its
weight and bias are frozen. `freeze` with `bn_eval: true` marks the layers; the
trainer (and anyone putting a model in train mode) calls `set_train_mode`.
"""

from __future__ import annotations

from torch import nn

#: attribute set on a BatchNorm module that must stay in eval mode
BN_EVAL_MARK = "_weightsmith_bn_eval"


def set_train_mode(model: nn.Module, training: bool = True) -> None:
    """`model.train(training)`, then put marked BatchNorm layers back in eval mode."""
    model.train(training)
    for module in model.modules():
        if getattr(module, BN_EVAL_MARK, False):
            module.eval()
