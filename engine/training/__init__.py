"""Test training: check an edited model by training it for a while (Qt-free).

`Trainer(session, config).run()` trains the session's live model on synthetic data,
the demo digits, an image folder or a tensor file, and returns a `TrainResult` whose
report verifies the run (loss, frozen tensors bit-identical, ties intact, BatchNorm
statistics); `keep()` records it as one undoable step, `discard()` restores the bits.
"""

from __future__ import annotations

from .config import TrainConfig
from .report import Check, TrainReport
from .trainer import Metrics, Trainer, TrainResult

__all__ = ["Check", "Metrics", "TrainConfig", "TrainReport", "TrainResult", "Trainer"]
