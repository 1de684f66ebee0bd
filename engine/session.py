"""The Session: one document (a live module or a checkpoint), its History and events.

Every mutation goes through `Session.apply`, which builds an edit from a JSON-ready
dict, runs it inside a transaction (rolled back on failure), records it as one
undoable step, and emits events that tell views what changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import paths
from .changes import Change, Transaction
from .checkpoint import CheckpointState, Slot
from .errors import EditError
from .events import SessionEvents
from .history import DEFAULT_BUDGET_BYTES, History, Step


@dataclass(frozen=True)
class TensorEntry:
    """Where one named tensor lives in model mode."""

    name: str
    owner_path: str
    owner: nn.Module
    leaf: str
    kind: str  # "parameter" or "buffer"
    tensor: torch.Tensor

    @property
    def registry(self) -> dict[str, Any]:
        return self.owner._parameters if self.kind == "parameter" else self.owner._buffers


@dataclass
class _OpenGroup:
    label: str
    edits: list[Any]
    tx: Transaction


class Session:
    """A document being edited, with exact undo/redo.

    Parameters
    ----------
    model : the live module to edit ("model mode"); None with `checkpoint`
    checkpoint : tensors without a module ("checkpoint mode")
    history_budget : bytes of undo data kept before the oldest steps are dropped
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        checkpoint: CheckpointState | dict[str, torch.Tensor] | None = None,
        history_budget: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        if (model is None) == (checkpoint is None):
            raise TypeError("Session needs exactly one of a model or a checkpoint")
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"Session(model): expected an nn.Module, got {type(model).__name__}")
        if isinstance(checkpoint, dict):
            checkpoint = CheckpointState.from_tensors(checkpoint)
        self.model: nn.Module | None = model
        self.checkpoint: CheckpointState | None = checkpoint
        self.events = SessionEvents()
        self.history = History(history_budget)
        #: where the document came from; the io layer and the GUI fill this in
        self.source: dict[str, Any] = {}
        self._entries_cache: list[TensorEntry] | None = None
        self._alias_cache: dict[str, list[str]] | None = None
        self._group: _OpenGroup | None = None
        self._busy_reason: str | None = None

    # ------------------------------------------------------------------ files
    @classmethod
    def open(cls, path: str | Path, arch: str | None = None,
             arch_args: dict[str, Any] | None = None, trust: bool = False,
             **options: Any) -> Session:
        """Open a checkpoint file or folder (with `arch`: in model mode).

        See `engine.io.opening.open_session` for the options. Raises FileError or ArchError.
        """
        from .io.opening import open_session

        return open_session(path, arch=arch, arch_args=arch_args, trust=trust, **options)

    def save(self, path: str | Path, **options: Any) -> Any:
        """Write the document to `path` atomically; see `engine.io.saving.save_session`."""
        from .io.saving import save_session

        return save_session(self, path, **options)

    # ------------------------------------------------------------------ document
    @property
    def mode(self) -> str:
        """'model' when a live module is edited, 'checkpoint' for bare tensors."""
        return "model" if self.model is not None else "checkpoint"

    def tensor_entries(self) -> list[TensorEntry]:
        """Every parameter and buffer of the model, aliases included, in state_dict order."""
        if self.model is None:
            raise EditError("this operation needs a model (the session is in checkpoint mode)")
        if self._entries_cache is None:
            entries = []
            for path, module in self.model.named_modules(remove_duplicate=False):
                for kind, registry in (("parameter", module._parameters),
                                       ("buffer", module._buffers)):
                    for leaf, tensor in registry.items():
                        if tensor is not None:
                            entries.append(TensorEntry(paths.join_name(path, leaf), path,
                                                       module, leaf, kind, tensor))
            self._entries_cache = entries
        return self._entries_cache

    def tensor_names(self) -> list[str]:
        """Every tensor name (parameters and buffers, aliases included), in order."""
        if self.checkpoint is not None:
            return list(self.checkpoint.entries)
        return [entry.name for entry in self.tensor_entries()]

    def entry(self, name: str, field: str = "target") -> TensorEntry:
        """Resolve a tensor name in model mode; raise EditError naming `field`."""
        if not isinstance(name, str):
            raise EditError(f"{field}: expected a tensor name")
        assert self.model is not None
        owner_path, leaf = paths.split_name(name)
        owner_path, owner = paths.resolve_module(self.model, owner_path, field)
        for kind, registry in (("parameter", owner._parameters), ("buffer", owner._buffers)):
            tensor = registry.get(leaf)
            if tensor is not None:
                return TensorEntry(paths.join_name(owner_path, leaf), owner_path, owner, leaf,
                                   kind, tensor)
        if leaf in owner._modules:
            raise EditError(f"{field}: '{name}' is a module, not a tensor")
        raise EditError(f"{field}: no tensor named '{name}'")

    def is_tensor(self, name: str) -> bool:
        """Whether `name` names a tensor (a parameter, buffer or checkpoint entry)."""
        if self.checkpoint is not None:
            return name in self.checkpoint.entries
        try:
            self.entry(name)
        except EditError:
            return False
        return True

    def canonical_name(self, name: str, field: str = "target") -> str:
        """The canonical name of a tensor (`classifier[-1].weight` -> `classifier.6.weight`)."""
        if self.checkpoint is not None:
            if name not in self.checkpoint.entries:
                raise EditError(f"{field}: no tensor named '{name}'")
            return name
        return self.entry(name, field).name

    def tensor(self, name: str, field: str = "target") -> torch.Tensor:
        """The live tensor object named `name` (read from disk first in checkpoint mode)."""
        if self.checkpoint is not None:
            slot = self.checkpoint.entries.get(name)
            if slot is None:
                raise EditError(f"{field}: no tensor named '{name}'")
            return slot.tensor
        return self.entry(name, field).tensor

    def tensor_meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        """Shape and dtype of a tensor without reading its data."""
        if self.checkpoint is not None:
            slot = self.checkpoint.entries[name]
            return slot.shape, slot.dtype
        tensor = self.entry(name).tensor
        return tuple(tensor.shape), tensor.dtype

    def aliases(self, name: str) -> list[str]:
        """Every name bound to the same tensor as `name` (itself included)."""
        if self._alias_cache is None:
            self._alias_cache = {n: group for group in self.tie_groups() for n in group}
        return list(self._alias_cache.get(name, [name]))

    def _invalidate(self) -> None:
        """Drop cached name lookups after objects moved (a tie, a replace, a rename)."""
        self._entries_cache = None
        self._alias_cache = None

    def tie_groups(self) -> list[list[str]]:
        """Names that share one tensor object, for groups of two or more."""
        if self.checkpoint is not None:
            return self.checkpoint.tie_groups()
        groups: dict[int, list[str]] = {}
        for entry in self.tensor_entries():
            groups.setdefault(id(entry.tensor), []).append(entry.name)
        return [names for names in groups.values() if len(names) > 1]

    def check_model(self, field: str) -> None:
        """Raise EditError naming `field` unless the session holds a model."""
        if self.model is None:
            raise EditError(f"{field}: needs a model; the session is in checkpoint mode "
                            "(attach an architecture first)")

    def module(self, path: str, field: str = "target") -> tuple[str, nn.Module]:
        """Resolve a module path (model mode only) to its canonical name and module."""
        if self.model is None:
            raise EditError(
                f"{field}: modules exist only in model mode (open with an architecture)"
            )
        return paths.resolve_module(self.model, path, field)

    def alias_paths(self, path: str) -> tuple[str, ...]:
        """Other paths of the node at `path` when its parent module is shared by several
        paths (a tied module): a change under one path shows under all of them."""
        assert self.model is not None
        parent_path, leaf = paths.split_name(path)
        _, parent = self.module(parent_path)
        others = [paths.join_name(p, leaf)
                  for p, m in self.model.named_modules(remove_duplicate=False) if m is parent]
        return tuple(p for p in others if p != path)

    def replace_module(self, tx: Transaction, path: str, new: nn.Module) -> None:
        """Put `new` at module `path` through `tx` (undoable, keeps the position)."""
        from .changes import ItemChange

        parent_path, leaf = paths.split_name(path)
        _, parent = self.module(parent_path)
        tx.add(ItemChange(parent._modules, leaf, new, "structure", (path,), structure_path=path,
                          emit=self.emit_structure, also_paths=self.alias_paths(path)))

    def select_tensors(
        self,
        patterns: list[str],
        field: str = "targets",
        *,
        parameters_only: bool = False,
        allow_empty: bool = False,
        bulk_floating_only: bool = False,
    ) -> list[str]:
        """Resolve names, globs and module names to tensor names, in document order.

        A tensor name or a glob over tensor names selects those tensors (buffers too,
        unless `parameters_only`). A module name, or a glob that matches module names,
        stands for the parameters below it. Each tensor is listed once, under its first
        name, so tied tensors are not selected twice. Order is the document's
        (`named_parameters()` order for parameters), never the order of the patterns.

        With `bulk_floating_only`, what a glob or a module name selects is kept only
        where it is floating-point, as `model.half()` and `model.to(dtype)` change
        floating-point tensors only; a tensor named itself is selected whatever its dtype.

        Raises
        ------
        EditError : a pattern matches nothing (unless `allow_empty`)
        """
        if self.checkpoint is not None:
            pairs = [(name, id(slot), True) for name, slot in self.checkpoint.entries.items()]
            module_paths: list[str] = []
        else:
            assert self.model is not None
            pairs = [(entry.name, id(entry.tensor), entry.kind == "parameter")
                     for entry in self.tensor_entries()]
            module_paths = [path for path, _ in self.model.named_modules(remove_duplicate=False)]
        first_name: dict[int, str] = {}
        for name, key, _ in pairs:
            first_name.setdefault(key, name)
        canonical = {name: first_name[key] for name, key, _ in pairs}
        direct = [name for name, _, is_param in pairs if is_param or not parameters_only]
        params = [name for name, _, is_param in pairs if is_param]
        selected: set[str] = set()
        for pattern in patterns:
            bulk = True
            if paths.is_glob(pattern):
                hits = paths.match_names([pattern], direct)[pattern]
                for path in paths.match_names([pattern], module_paths)[pattern]:
                    hits += [name for name in params if paths.under(name, path) and name != path]
            elif pattern in canonical:
                hits = [pattern] if pattern in direct else []
                bulk = False
                if not hits:
                    raise EditError(f"{field}: '{pattern}' is a buffer; only parameters apply")
            elif self.model is not None:
                hits, bulk = self._tensor_or_module_hits(pattern, field, params)
            else:
                hits = []
            if not hits and not allow_empty:
                raise EditError(f"{field}: '{pattern}' matches no tensor or module")
            if bulk and bulk_floating_only and hits:
                hits = [name for name in hits if self.tensor_meta(name)[1].is_floating_point]
                if not hits and not allow_empty:
                    raise EditError(f"{field}: '{pattern}' matches no floating-point tensor "
                                    "(name integer or bool tensors one by one to change them)")
            selected.update(canonical[name] for name in hits)
        order = {name: position for position, name in enumerate(canonical)}
        return sorted(selected, key=order.__getitem__)

    def _tensor_or_module_hits(self, pattern: str, field: str,
                               params: list[str]) -> tuple[list[str], bool]:
        """(hits, whether they are a bulk selection) for a pattern that is no literal name."""
        # Not a literal name: it may be a tensor named with index notation
        # (`classifier[-1].weight`) or a module whose parameters are meant.
        try:
            return [self.entry(pattern, field).name], False
        except EditError:
            pass
        path, _ = self.module(pattern, field)
        hits = [name for name in params if paths.under(name, path)]
        if not hits:
            raise EditError(f"{field}: module '{path}' has no parameters")
        return hits, True

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Current tensors by name (the model's state_dict, or every checkpoint tensor)."""
        if self.checkpoint is not None:
            return {name: slot.tensor for name, slot in self.checkpoint.entries.items()}
        assert self.model is not None
        return self.model.state_dict()

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

    def apply(self, spec: dict[str, Any] | Any) -> Any:
        """Perform one edit and record it as one undoable step.

        Parameters
        ----------
        spec : a JSON-ready dict such as `{"op": "freeze", "targets": ["layer1"]}`

        Returns
        -------
        The edit's result (for example the report of a `load`), or None.

        Raises
        ------
        EditError : the edit was rejected or failed; the session is unchanged
        """
        from .edits import build_edit

        self._check_not_busy()
        edit = build_edit(spec)
        edit.check_mode(self)
        tx = Transaction(self._invalidate)
        try:
            result = edit.perform(self, tx)
        except BaseException as error:
            tx.rollback()
            self._after_changes(tx.changes)
            if isinstance(error, EditError):
                raise
            if isinstance(error, Exception):
                raise EditError(f"{edit.op}: {error}") from error
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
        group = self._group = _OpenGroup(label, [], Transaction(self._invalidate))
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
            from .edits.group import Group

            self._push(Step(label, Group.of(label, group.edits), group.tx.changes))

    def undo(self) -> None:
        """Revert the last applied step exactly (values, flags, modes, objects)."""
        self._check_not_busy()
        if self._group is not None:
            raise EditError("undo: not possible inside an open group")
        if not self.history.can_undo:
            raise EditError("undo: nothing to undo")
        step = self.history.pop_undo()
        step.undo()
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
        step.redo()
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
    def emit_structure(self, stage: str, path: str) -> None:
        """Called by structure changes around the moment they mutate the document."""
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
            self.events.tensors_changed.emit(self._with_aliases(value_names))
        if flag_names:
            self.events.flags_changed.emit(self._with_aliases(flag_names))

    def _with_aliases(self, names: set[str]) -> list[str]:
        result = set(names)
        for name in names:
            result.update(self.aliases(name))
        return sorted(result)

    # ------------------------------------------------------------------ checkpoint helpers
    def slot(self, name: str, field: str = "target") -> Slot:
        """The Slot bound to `name` in checkpoint mode."""
        assert self.checkpoint is not None
        slot = self.checkpoint.entries.get(name)
        if slot is None:
            raise EditError(f"{field}: no tensor named '{name}'")
        return slot
