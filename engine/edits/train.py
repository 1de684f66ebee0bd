"""`train`: a kept test training, as one undoable step that a recipe can replay.

A run from the GUI or the CLI is kept by the Session (`Session.keep_training`), which
applies this edit built from the run's result: the edit applies the run's changes
through the transaction like any other edit, so undo writes the pre-training bits
back. The same op read from a recipe runs the trainer again on the document with the
recorded settings and seed (deterministic on the same device; bit-exact on the CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..training.config import TRAIN_FIELDS, TrainConfig, step_label
from .base import Edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import ModelDocument
    from ..training.trainer import TrainResult

__all__ = ["Train", "step_label"]


@register
class Train(Edit):
    """Train the model with the recorded settings; undo restores the weights exactly."""

    op = "train"
    fields = TRAIN_FIELDS
    modes = frozenset({"model"})

    def parse(self) -> None:
        self.config = TrainConfig.from_dict(self._settings(), prefix="train")
        self._finished: TrainResult | None = None

    def _settings(self) -> dict[str, Any]:
        return {key: value for key, value in self.to_dict().items()
                if key not in ("op", "label")}

    @classmethod
    def from_result(cls, result: TrainResult) -> Train:
        """The edit that applies a finished run's changes (its trained weights)."""
        edit = cls({"op": "train", **result.recorded})
        edit._finished = result
        return edit

    def describe(self) -> str:
        return step_label(self.config.steps, self.config.epochs)

    def perform(self, doc: ModelDocument, tx: Transaction) -> Any:
        result = self._finished
        self._finished = None  # the history step holds the changes from now on
        if result is None:
            from ..training.trainer import Trainer

            result = Trainer(doc, self.config).run(hold=False)
            # Record what the run resolved (a drawn seed, a proposed shape), as other
            # random edits do, so that the recipe replays the very same run.
            self.record(**result.recorded)
            self.config = TrainConfig.from_dict(self._settings())
        for change in result.take_changes():
            tx.add(change)
        return result.report.to_dict()
