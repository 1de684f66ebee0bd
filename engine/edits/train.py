"""`train`: a kept test training, as one undoable step that a recipe can replay.

A run from the GUI or the CLI has already changed the weights when the user keeps
it; the edit then records the changes the trainer captured before the first step, so
undo writes the pre-training bits back. The same op read from a recipe runs the
trainer again with the recorded settings and seed (deterministic on the same device;
bit-exact on the CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..training.config import TrainConfig
from .base import Edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..session import Session
    from ..training.trainer import TrainResult


def step_label(steps: int | None, epochs: int | None = None) -> str:
    """The history label of a kept run: 'Test training: 200 steps'."""
    if steps is None and epochs is not None:
        return f"Test training: {epochs} epoch{'s' if epochs != 1 else ''}"
    return f"Test training: {steps} step{'s' if steps != 1 else ''}"


@register
class Train(Edit):
    """Train the model with the recorded settings; undo restores the weights exactly."""

    op = "train"
    fields = dict.fromkeys(TrainConfig.field_names(), False)
    modes = frozenset({"model"})

    def parse(self) -> None:
        settings = {key: value for key, value in self.spec.items() if key not in ("op", "label")}
        self.config = TrainConfig.from_dict(settings, prefix="train")
        self._finished: tuple[list[Any], dict[str, Any]] | None = None

    @classmethod
    def from_result(cls, result: TrainResult) -> Train:
        """The edit that records a finished run (its changes are already made)."""
        edit = cls({"op": "train", **result.recorded})
        edit._finished = (result.changes, result.report.to_dict())
        return edit

    def describe(self) -> str:
        return step_label(self.config.steps, self.config.epochs)

    def perform(self, session: Session, tx: Transaction) -> Any:
        if self._finished is not None:
            changes, report = self._finished
            self._finished = None  # the history step holds the changes from now on
        else:
            from ..training.trainer import Trainer

            result = Trainer(session, self.config).run(hold=False)
            changes, report = result.changes, result.report.to_dict()
            # Record what the run resolved (a drawn seed, a proposed shape), as other
            # random edits do, so that the recipe replays the very same run.
            self.spec.update(result.recorded)
            self.config = TrainConfig.from_dict(
                {key: value for key, value in self.spec.items() if key not in ("op", "label")})
        for change in changes:
            tx.add(change)
        return report
