"""The Session: one document, its History and its events; the only place edits run.

Every mutation goes through `Session.apply`, which builds an edit from a JSON-ready
dict, runs it on the document inside a transaction (rolled back on failure), records
it as one undoable step, and emits events that tell views what changed. The document
itself (`session.document`: a `ModelDocument` or a `CheckpointDocument`) answers
every question about what is edited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .changes import Change, Transaction, run_change
from .checkpoint import CheckpointState
from .document import Document, make_document
from .edits import Edit, build_edit
from .edits.group import Group
from .errors import EditError
from .events import SessionEvents
from .history import DEFAULT_BUDGET_BYTES, History, Step


@dataclass
class _OpenGroup:
    label: str
    edits: list[Edit]
    tx: Transaction


class Session:
    """A document being edited, with exact undo/redo.

    Parameters
    ----------
    model : the live module to edit ("model mode"); None with `checkpoint`
    checkpoint : tensors without a module ("checkpoint mode")
    document : a document made already (what `engine.opening` gives)
    history_budget : bytes of undo data kept before the oldest steps are dropped

    Attributes
    ----------
    allocation_limit : bytes one edit may allocate from the numbers of its spec (a
        resize, a new layer, an attached architecture's arguments, an expression's
        intermediates); None: the larger of 1 GiB and twice the document, at most the
        memory available (see `engine.allocation`)
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        checkpoint: CheckpointState | dict[str, torch.Tensor] | None = None,
        document: Document | None = None,
        history_budget: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self.document: Document = (document if document is not None
                                   else make_document(model, checkpoint))
        self.events = SessionEvents()
        self.history = History(history_budget)
        self._group: _OpenGroup | None = None
        self._busy_reason: str | None = None
        self.allocation_limit: int | None = None

    # ------------------------------------------------------------------ files
    @classmethod
    def open(cls, path: str | Path, arch: str | None = None,
             arch_args: dict[str, Any] | None = None, trust: bool = False,
             history_budget: int = DEFAULT_BUDGET_BYTES, **options: Any) -> Session:
        """Open a checkpoint file or folder (with `arch`: in model mode).

        The io layer reads the document (see `engine.io.opening.read_document` for the
        options: progress, choice, strip_prefix, strict, seed); `engine.opening` opens
        architectures, the demo and open requests through this.

        Raises
        ------
        FileError : unreadable, damaged, unsafe without trust, or not fitting `arch` (strict)
        ArchError : the architecture cannot be built
        Cancelled : `progress.cancel()` was called
        """
        from .io.opening import read_document

        document = read_document(path, arch=arch, arch_args=arch_args, trust=trust, **options)
        return cls(document=document, history_budget=history_budget)

    def save(self, path: str | Path, *, mark_saved: bool = True, **options: Any) -> Any:
        """Write the document to `path` atomically and return the report; see
        `engine.io.saving.save_document` for the options.

        With `mark_saved` (the default) the session is unmodified afterwards and
        `source["saved_path"]` names the file.
        """
        from .io.saving import save_document

        report = save_document(self.document, self.recipe(), path, **options)
        if mark_saved:
            self.document.source["saved_path"] = str(path)
            self.mark_saved()
        return report

    # ------------------------------------------------------------------ the document
    @property
    def mode(self) -> str:
        """'model' when a live module is edited, 'checkpoint' for bare tensors."""
        return self.document.mode

    @property
    def model(self) -> nn.Module | None:
        """The live module (None in checkpoint mode)."""
        return self.document.model

    @property
    def checkpoint(self) -> CheckpointState | None:
        """The checkpoint's tensors (None in model mode)."""
        return self.document.checkpoint

    @property
    def source(self) -> dict[str, Any]:
        """Where the document came from (see `engine.opening.open_path`)."""
        return self.document.source

    @source.setter
    def source(self, value: dict[str, Any]) -> None:
        self.document.source = value

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Current tensors by name (the model's state_dict, or every checkpoint tensor)."""
        return self.document.state_dict()

    # ------------------------------------------------------------------ editing
    @property
    def busy_reason(self) -> str | None:
        """Why edits are refused right now (a test training runs), or None."""
        return self._busy_reason

    @contextlib.contextmanager
    def busy(self, reason: str) -> Iterator[None]:
        """Refuse edits, undo and redo while the block runs (e.g. during training)."""
        if self._busy_reason is not None:
            raise EditError(f"the session is busy: {self._busy_reason}")
        self._busy_reason = reason
        try:
            yield
        finally:
            self._busy_reason = None

    def _check_not_busy(self) -> None:
        if self._busy_reason is not None:
            raise EditError(f"the session is busy: {self._busy_reason}")

    def _transaction(self) -> Transaction:
        return Transaction(self, self._on_structure, self._invalidate, self.allocation_limit)

    def apply(self, spec: dict[str, Any] | Edit, *, trust: bool = False) -> Any:
        """Perform one edit and record it as one undoable step.

        Parameters
        ----------
        spec : a JSON-ready dict such as `{"op": "freeze", "targets": ["layer1"]}`
        trust : allow an edit that runs code (`attach` with an architecture from a .py
            file, a Hugging Face folder with custom code, `trust_remote_code`); without
            it such an edit raises `engine.code_needs.CodeNotTrusted` (an EditError
            whose `code` lists what would run) and nothing runs

        Returns
        -------
        The edit's result (for example the report of a `load`), or None.

        Raises
        ------
        EditError : the edit was rejected or failed; the session is unchanged
        """
        from .code_needs import require_trust

        self._check_not_busy()
        edit = build_edit(spec)
        edit.check_mode(self.document)
        code = edit.code_to_run(self.document)
        require_trust(code, trust)
        edit.trusted = bool(code)
        tx = self._transaction()
        try:
            result = edit.perform(self.document, tx)
        except BaseException as error:
            changes = list(tx.changes)
            tx.rollback()
            self._after_changes(changes)
            if isinstance(error, EditError):
                raise
            if isinstance(error, RecursionError):
                raise EditError(f"{edit.op}: nested too deeply") from None
            if isinstance(error, Exception):
                # Never an empty message: name the failure when the error has no text.
                text = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise EditError(f"{edit.op}: {text or f'failed ({type(error).__name__})'}"
                                ) from error
            raise
        if self._group is not None:
            self._group.tx.changes.extend(tx.changes)
            self._group.edits.append(edit)
            self._after_changes(tx.changes)
            return result
        # Record first, notify after: a view that fails while being notified must not
        # leave an applied edit outside the history.
        dropped = self.history.push(Step(edit.label, edit, tx.changes, result))
        try:
            self._after_changes(tx.changes)
        finally:
            self._report_dropped(dropped)
            self.events.history_changed.emit()
        return result

    @contextlib.contextmanager
    def group(self, label: str) -> Iterator[None]:
        """Apply several edits as one undoable step.

        If the block raises, every edit applied inside it is reverted and the error
        propagates. Groups do not nest.
        """
        self._check_not_busy()
        if self._group is not None:
            raise EditError("group: groups do not nest")
        group = self._group = _OpenGroup(label, [], self._transaction())
        try:
            # Views hear the group's value and flag changes once, merged, at its end.
            with self.events.paused():
                yield
        except BaseException:
            self._group = None
            changes = list(group.tx.changes)
            group.tx.rollback()
            self._after_changes(changes)
            raise
        self._group = None
        if group.edits:
            self._push(Step(label, Group.of(label, group.edits), group.tx.changes))

    def keep_training(self, result: Any) -> Any:
        """Apply a finished test training (a `TrainResult`) as the undoable edit "train"."""
        from .edits.train import Train

        return self.apply(Train.from_result(result))

    def revert_unrecorded(self, changes: list[Change]) -> None:
        """Revert changes made outside any edit (a test training that is discarded),
        newest first, and tell the views; the history is not touched."""
        for change in reversed(changes):
            run_change(change, change.revert, self._on_structure)
        self._after_changes(changes)

    def undo(self) -> None:
        """Revert the last applied step exactly (values, flags, modes, objects)."""
        self._check_not_busy()
        if self._group is not None:
            raise EditError("undo: not possible inside an open group")
        if not self.history.can_undo:
            raise EditError("undo: nothing to undo")
        step = self.history.pop_undo()
        step.undo(self._on_structure)
        try:
            self._after_changes(step.changes)
        finally:
            self.events.history_changed.emit()

    def redo(self) -> None:
        """Re-apply the last undone step, restoring the very objects and bits it made."""
        self._check_not_busy()
        if self._group is not None:
            raise EditError("redo: not possible inside an open group")
        if not self.history.can_redo:
            raise EditError("redo: nothing to redo")
        step = self.history.pop_redo()
        step.redo(self._on_structure)
        try:
            self._after_changes(step.changes)
        finally:
            self.events.history_changed.emit()

    def go_to(self, position: int) -> None:
        """Undo or redo until `position` steps of the stacks are applied."""
        if not 0 <= position <= len(self.history.steps):
            raise EditError(f"history: position {position} is out of range")
        while self.history.position > position:
            self.undo()
        while self.history.position < position:
            self.redo()

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo and self._busy_reason is None

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo and self._busy_reason is None

    def can_apply(self, op: str) -> bool:
        """Whether an edit of kind `op` can run on this document now (not busy, right mode)."""
        return self._busy_reason is None and self.offers(op)

    def offers(self, op: str) -> bool:
        """Whether edits of kind `op` work on this document at all, busy or not."""
        from .edits import EDIT_TYPES

        edit_type = EDIT_TYPES.get(op)
        return edit_type is not None and edit_type.works_on(self.document)

    @property
    def is_modified(self) -> bool:
        """True when the document differs from its last saved (or opened) state."""
        return not self.history.is_clean

    def mark_saved(self) -> None:
        """Record the current position as the saved state."""
        self.history.mark_clean()
        self.events.history_changed.emit()

    def recipe(self) -> list[dict[str, Any]]:
        """The applied edits on the current branch, as JSON-ready dicts, oldest first."""
        return [step.spec for step in self.history.applied_steps()]

    def set_history_budget(self, budget_bytes: int) -> None:
        """Change how many bytes of undo data are kept; may drop the oldest steps."""
        self._report_dropped(self.history.set_budget(budget_bytes))
        self.events.history_changed.emit()

    def _push(self, step: Step) -> None:
        self._report_dropped(self.history.push(step))
        self.events.history_changed.emit()

    def _report_dropped(self, dropped: list[Step]) -> None:
        if dropped:
            labels = ", ".join(step.label for step in dropped)
            self.events.notice.emit(
                f"Undo history over its budget of {self.history.budget_bytes / 2**20:.0f} MiB: "
                f"the oldest {len(dropped)} step(s) can no longer be undone ({labels})"
            )

    # ------------------------------------------------------------------ notifications
    def _invalidate(self) -> None:
        self.document.invalidate()

    def _on_structure(self, stage: str, path: str) -> None:
        """Told by a transaction or a history step around a structure change."""
        self._invalidate()
        if stage == "about":
            self.events.structure_about_to_change.emit(path)
        else:
            self.events.structure_changed.emit(path)

    def _after_changes(self, changes: list[Change]) -> None:
        if not changes:
            return
        self._invalidate()  # ties and data objects may have moved
        value_names: set[str] = set()
        flag_names: set[str] = set()
        for change in changes:
            # A change may concern both (a tie changes values and tie state).
            if "values" in change.kind:
                value_names.update(change.names)
            if "flags" in change.kind:
                flag_names.update(change.names)
        if value_names:
            self.events.tensors_changed.emit(self.document.with_aliases(value_names))
        if flag_names:
            self.events.flags_changed.emit(self.document.with_aliases(flag_names))
