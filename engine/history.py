"""Undo/redo stacks bounded by bytes, with a clean index that marks the saved state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .changes import Change, Notify, run_change

DEFAULT_BUDGET_BYTES = 2 * 1024**3


@dataclass
class Step:
    """One undoable step: the edit it ran, its label and its primitive changes.

    The edit object is kept (not only its dict) because it holds what it resolved
    while running (the tensors a glob selected, the exact module built), which the
    script export needs.
    """

    label: str
    edit: Any  # engine.edits.base.Edit; typed loosely to keep history free of edits
    changes: list[Change] = field(default_factory=list)
    result: Any = None

    @property
    def spec(self) -> dict[str, Any]:
        """The edit as a JSON-ready dict (what the recipe records)."""
        return self.edit.to_dict()

    @property
    def nbytes(self) -> int:
        return sum(change.nbytes for change in self.changes)

    def undo(self, notify: Notify | None = None) -> None:
        """Revert every change, newest first; `notify` hears structure changes."""
        for change in reversed(self.changes):
            run_change(change, change.revert, notify)

    def redo(self, notify: Notify | None = None) -> None:
        """Re-apply every change, oldest first; `notify` hears structure changes."""
        for change in self.changes:
            run_change(change, change.apply, notify)


class History:
    """A linear history of steps with a position, a byte budget and a clean index.

    Steps before `position` are applied (undoable), steps after it were undone
    (redoable). Pushing a step discards the redoable ones. When the undo data of all
    steps exceeds `budget_bytes`, the oldest steps are dropped: they stay applied
    (and in the recipe) but can no longer be undone.

    Positions are counted from the very first step ever pushed, so the clean index
    (the state last saved) stays correct after old steps are dropped.
    """

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if budget_bytes < 0:
            raise ValueError("budget_bytes must be >= 0")
        self.budget_bytes = budget_bytes
        self.steps: list[Step] = []
        self._position = 0  # index into self.steps
        self.dropped: list[Step] = []  # oldest steps, applied but no longer undoable
        self._clean_absolute: int | None = 0

    # --- position -------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Number of applied steps still in the stacks."""
        return self._position

    @property
    def absolute_position(self) -> int:
        """Number of applied steps since the history began, dropped ones included."""
        return len(self.dropped) + self._position

    @property
    def can_undo(self) -> bool:
        return self._position > 0

    @property
    def can_redo(self) -> bool:
        return self._position < len(self.steps)

    @property
    def labels(self) -> list[str]:
        return [step.label for step in self.steps]

    @property
    def undo_label(self) -> str | None:
        return self.steps[self._position - 1].label if self.can_undo else None

    @property
    def redo_label(self) -> str | None:
        return self.steps[self._position].label if self.can_redo else None

    @property
    def nbytes(self) -> int:
        return sum(step.nbytes for step in self.steps)

    def applied_steps(self) -> list[Step]:
        """Every applied step, oldest first, including those dropped for the budget."""
        return [*self.dropped, *self.steps[: self._position]]

    # --- clean state ----------------------------------------------------------------
    @property
    def is_clean(self) -> bool:
        return self._clean_absolute == self.absolute_position

    def mark_clean(self) -> None:
        self._clean_absolute = self.absolute_position

    @property
    def clean_position(self) -> int | None:
        """Where the saved state is, counted like `position` (0: before the oldest kept
        step), or None when it is no longer in the stacks (dropped, or on a branch
        that a newer step discarded)."""
        if self._clean_absolute is None or self._clean_absolute < len(self.dropped):
            return None
        return self._clean_absolute - len(self.dropped)

    # --- mutation -------------------------------------------------------------------
    def push(self, step: Step) -> list[Step]:
        """Append an applied step, discard redoable ones; return steps dropped for budget."""
        if self._clean_absolute is not None and self._clean_absolute > self.absolute_position:
            self._clean_absolute = None  # the saved state was on the discarded branch
        del self.steps[self._position :]
        self.steps.append(step)
        self._position += 1
        return self._enforce_budget()

    def pop_undo(self) -> Step:
        """Move the position back one step and return that step (the caller reverts it)."""
        if not self.can_undo:
            raise IndexError("nothing to undo")
        self._position -= 1
        return self.steps[self._position]

    def pop_redo(self) -> Step:
        """Move the position forward one step and return that step (the caller re-applies it)."""
        if not self.can_redo:
            raise IndexError("nothing to redo")
        self._position += 1
        return self.steps[self._position - 1]

    def set_budget(self, budget_bytes: int) -> list[Step]:
        """Change the byte budget; return the steps dropped to meet it."""
        if budget_bytes < 0:
            raise ValueError("budget_bytes must be >= 0")
        self.budget_bytes = budget_bytes
        return self._enforce_budget()

    def clear(self) -> None:
        """Forget every step (after opening another document)."""
        self.steps.clear()
        self.dropped.clear()
        self._position = 0
        self._clean_absolute = 0

    def _enforce_budget(self) -> list[Step]:
        dropped: list[Step] = []
        total = self.nbytes
        while total > self.budget_bytes and self._position > 0:
            oldest = self.steps.pop(0)
            self._position -= 1
            total -= oldest.nbytes
            # Keep only what the recipe needs; the undo data is released here.
            oldest.changes = []
            self.dropped.append(oldest)
            dropped.append(oldest)
        return dropped
