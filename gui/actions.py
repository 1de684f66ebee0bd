"""Every engine edit as a QAction: in the Edit menu, the toolbar and the tree's context menu.

An action reads the selection (dotted names), asks for what it needs in a dialog,
builds JSON-ready edit dicts and applies them through `Session.apply`. An edit
that takes several targets (freeze, init, scale, add) gets the whole selection at
once; one that takes a single target (set, tie, untie, replace, tensor
operations) is applied to each selected item inside `session.group(...)`, so a
multi-selection is always one undo step. An edit the engine refuses changes
nothing and is reported in one dialog line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from engine.code_needs import CodeNotTrusted
from engine.errors import EditError

from .dialogs import base
from .icons import icon

if TYPE_CHECKING:
    from engine.session import Session

    from .main_window import MainWindow

#: checkpoint tensor operations offered when the engine registers them
TENSOR_OPS = ("rename", "copy", "cast", "resize", "delete")
_READ_CHUNK = 8 << 20


def read_through(path: str, progress: Any = None) -> int:
    """Read a file once, in chunks, so that reading it again comes from the OS cache.

    Returns the bytes read; a missing file reads 0 (the edit then reports it).
    """
    from engine.progress import report

    try:
        size = Path(path).stat().st_size
        done = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                done += len(chunk)
                report(progress, done / max(size, 1), f"{done >> 20} MiB read")
    except OSError:
        return 0
    return done


class _Cancelled(Exception):
    """The user cancelled one dialog of a series: the group of edits is rolled back."""


class EditActions(QObject):
    """The edit actions of one main window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.set_action = self._action("Set Values…", self.set_values, "set",
                                       "Set the selected tensors to a value, an expression or "
                                       "a copy of another tensor")
        self.scale_action = self._action("Scale…", lambda: self.scalar("scale"), None,
                                         "Multiply the selected tensors by a number")
        self.add_action = self._action("Add…", lambda: self.scalar("add"), None,
                                       "Add a number to the selected tensors")
        self.init_action = self._action("Initialize…", self.initialize, "init",
                                        "Re-initialize the selection with a torch.nn.init method")
        self.tie_action = self._action("Tie To…", self.tie, "tie",
                                       "Share one tensor (or module) between two names")
        self.untie_action = self._action("Untie", self.untie, "untie",
                                         "Give each selected tied item its own copy")
        self.freeze_action = self._action("Freeze", lambda: self.set_trainable(False), "freeze",
                                          "Turn requires_grad off for the selection")
        self.unfreeze_action = self._action("Unfreeze", lambda: self.set_trainable(True),
                                            "unfreeze", "Turn requires_grad on for the selection")
        self.freeze_action.setShortcut(QKeySequence("Ctrl+F9"))
        self.unfreeze_action.setShortcut(QKeySequence("Ctrl+Shift+F9"))
        self.bn_eval_action = QAction("BatchNorm Follows Freeze", window)
        self.bn_eval_action.setCheckable(True)
        self.bn_eval_action.setChecked(window.settings.flag("edit/bn_eval"))
        self.bn_eval_action.setStatusTip("Freeze also puts BatchNorm layers in eval mode (their "
                                         "running statistics stop moving); Unfreeze undoes it")
        self.bn_eval_action.toggled.connect(
            lambda on: window.settings.set_value("edit/bn_eval", on))
        self.replace_action = self._action("Replace Module…", self.replace, "replace",
                                           "Swap the selected module for a new layer")
        self.replace_head_action = self._action("Replace Head…", self.replace_head, "replace",
                                                "A new classifier for another number of classes")
        self.load_action = self._action("Load Weights…", self.load_weights, "load",
                                        "Copy matching tensors from a file")
        self.attach_action = self._action("Attach Architecture…", self.attach, None,
                                          "Build a model around the checkpoint's tensors")
        self.tensor_op_actions: dict[str, QAction] = {}
        for op in TENSOR_OPS:
            text = {"rename": "Rename Tensor…", "copy": "Copy Tensor…", "cast": "Cast Tensor…",
                    "resize": "Resize Tensor…", "delete": "Delete Tensor"}[op]
            self.tensor_op_actions[op] = self._action(
                text, lambda op=op: self.tensor_op(op), None, f"Checkpoint operation: {op}")
        self.update_enabled()

    def _action(self, text: str, slot: Callable[[], Any], icon_name: str | None,
                tip: str) -> QAction:
        action = QAction(text, self.window)
        if icon_name:
            action.setIcon(icon(icon_name))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(lambda checked=False: slot())
        return action

    # ------------------------------------------------------------------ placement
    def fill_menu(self, menu: QMenu) -> None:
        values = menu.addMenu("Values")
        for action in (self.set_action, self.scale_action, self.add_action):
            values.addAction(action)
        menu.addAction(self.init_action)
        menu.addSeparator()
        menu.addAction(self.freeze_action)
        menu.addAction(self.unfreeze_action)
        menu.addAction(self.bn_eval_action)
        menu.addSeparator()
        menu.addAction(self.tie_action)
        menu.addAction(self.untie_action)
        menu.addSeparator()
        menu.addAction(self.replace_action)
        menu.addAction(self.replace_head_action)
        menu.addAction(self.load_action)
        tensors = menu.addMenu("Tensors")
        for action in self.tensor_op_actions.values():
            tensors.addAction(action)
        self.tensor_menu = tensors
        menu.addAction(self.attach_action)

    def fill_toolbar(self, toolbar: QToolBar) -> None:
        for action in (self.set_action, self.init_action, self.freeze_action,
                       self.unfreeze_action, self.tie_action, self.untie_action,
                       self.replace_action, self.load_action):
            toolbar.addAction(action)

    def fill_context_menu(self, menu: QMenu) -> None:
        """The tree's context menu: the actions that apply to the selection."""
        for group in ((self.set_action, self.scale_action, self.add_action, self.init_action),
                      (self.freeze_action, self.unfreeze_action),
                      (self.tie_action, self.untie_action),
                      (self.replace_action, self.replace_head_action),
                      tuple(self.tensor_op_actions.values())):
            shown = [action for action in group if action.isEnabled() and action.isVisible()]
            for action in shown:
                menu.addAction(action)
            if shown:
                menu.addSeparator()

    # ------------------------------------------------------------------ state
    def _selection(self) -> list[str]:
        return self.window.selected_paths()

    def _kinds(self, paths: list[str]) -> list[str]:
        model = self.window.tree_model
        kinds = []
        for path in paths:
            info = model.info_of(model.index_of(path))
            kinds.append(info.kind if info is not None else "")
        return kinds

    def update_enabled(self) -> None:
        """Enable each action when it can apply to the document and the selection."""
        session = self.window.session
        paths = self._selection() if session is not None else []
        kinds = self._kinds(paths)
        tensors = [k in ("parameter", "buffer", "tensor") for k in kinds]
        # A running test training makes the session refuse edits: nothing to offer then.
        has = session is not None and session.busy_reason is None

        def can(op: str) -> bool:
            return session is not None and session.can_apply(op)

        self.set_action.setEnabled(has and bool(paths) and all(tensors))
        self.scale_action.setEnabled(has and bool(paths))
        self.add_action.setEnabled(has and bool(paths))
        self.init_action.setEnabled(has)
        self.tie_action.setEnabled(has and len(paths) == 1 and paths[0] != "")
        tied = [self._is_tied(path) for path in paths] if has else []
        self.untie_action.setEnabled(has and bool(paths) and all(tied))
        self.freeze_action.setEnabled(can("freeze") and bool(paths))
        self.unfreeze_action.setEnabled(can("unfreeze") and bool(paths))
        self.replace_action.setEnabled(can("replace") and len(paths) == 1 and paths[0] != ""
                                       and kinds[0] == "module")
        self.replace_head_action.setEnabled(can("replace_head"))
        self.load_action.setEnabled(has)
        if session is None:
            # No document: nothing applies. The edit registry (torch) is not even loaded
            # yet while the first window paints.
            for action in (*self.tensor_op_actions.values(), self.attach_action):
                action.setEnabled(False)
            return
        from engine.edits import EDIT_TYPES

        for op, action in self.tensor_op_actions.items():
            action.setEnabled(can(op) and bool(paths) and all(tensors))
            action.setVisible(op in EDIT_TYPES)
        self.attach_action.setVisible("attach" in EDIT_TYPES)
        self.attach_action.setEnabled(can("attach"))

    def _is_tied(self, path: str) -> bool:
        model = self.window.tree_model
        info = model.info_of(model.index_of(path))
        return info is not None and info.tied

    # ------------------------------------------------------------------ applying
    def apply(self, spec: dict[str, Any]) -> Any:
        """Apply one edit; report a refusal in a dialog and return None.

        An edit that would run code (an architecture from a .py file, a Hugging Face
        folder with its own code) is applied only after the trust dialog, which lists
        exactly what would run, is accepted.
        """
        session = self.window.session
        if session is None:
            return None
        try:
            return session.apply(spec)
        except CodeNotTrusted as refusal:
            if not self.ask_trust("This edit", refusal.code, "Trust and Apply"):
                self.window.statusBar().showMessage("Not applied: not trusted", 5000)
                return None
        except EditError as error:
            self.window.show_error(str(error))
            return None
        try:
            return session.apply(spec, trust=True)
        except EditError as error:
            self.window.show_error(str(error))
            return None

    def ask_trust(self, subject: str, code: list[str], action: str) -> bool:
        """Show the trust dialog listing `code`; True when the user trusts it."""
        from .dialogs.trust_dialog import TrustDialog

        return base.run_dialog(TrustDialog("", code, self.window, subject=subject,
                                           action=action))

    def apply_all(self, label: str, specs: list[dict[str, Any]]) -> bool:
        """Apply several edits as one undo step (all or nothing); True when applied."""
        session = self.window.session
        if session is None or not specs:
            return False
        if len(specs) == 1:
            spec = dict(specs[0])
            try:
                session.apply(spec)
            except EditError as error:
                self.window.show_error(str(error))
                return False
            return True
        try:
            with session.group(label):
                for spec in specs:
                    session.apply(spec)
        except EditError as error:
            self.window.show_error(str(error))
            return False
        return True

    def apply_or_raise(self, label: str, specs: list[dict[str, Any]]) -> Any:
        """Apply edits as one undo step (all or nothing); return the last edit's result.

        Edits that would run code are applied only after the trust dialog (which lists
        exactly that code) is accepted.

        Raises
        ------
        EditError : the engine refused (or the code was not trusted); nothing changed
        """
        try:
            return self._apply_specs(label, specs, trust=False)
        except CodeNotTrusted as refusal:
            if not self.ask_trust("This edit", refusal.code, "Trust and Apply"):
                raise
        return self._apply_specs(label, specs, trust=True)

    def _apply_specs(self, label: str, specs: list[dict[str, Any]], *, trust: bool) -> Any:
        session = self.window.session
        if session is None:
            raise EditError("no document is open")
        if len(specs) == 1:
            return session.apply(dict(specs[0]), trust=trust)
        result = None
        with session.group(label):
            for spec in specs:
                result = session.apply(spec, trust=trust)
        return result

    def through_dialog(self, dialog: Any, build: Callable[[], list[dict[str, Any]]],
                       label: str = "") -> tuple[bool, Any]:
        """Show `dialog`; its OK applies the edits `build()` makes, as one undo step.

        A refusal of the engine keeps the dialog open with what the user typed and
        the message beside the field at fault. Returns (applied, the last edit's result).
        """
        outcome: list[Any] = []

        def apply() -> None:
            outcome.append(self.apply_or_raise(label, build()))

        dialog.on_accept = apply
        accepted = base.run_dialog(dialog)
        return accepted and bool(outcome), outcome[-1] if outcome else None

    def targets(self, paths: list[str]) -> list[str]:
        """The selection as edit targets: checkpoint groups become globs (`encoder.*`)."""
        session = self.window.session
        return paths if session is None else session.document.selection_targets(paths)

    # ------------------------------------------------------------------ the edits
    def set_values(self) -> None:
        """Set the selected tensors (one step for all)."""
        from .dialogs.edit_dialogs import SetDialog

        session = self._session()
        names = self._selection()
        if session is None or not names:
            return
        dialog = SetDialog(session, names, self.window)
        self.through_dialog(dialog, dialog.specs, f"Set {len(names)} tensors")

    def scalar(self, op: str) -> None:
        """Scale or add a number to the selection."""
        from .dialogs.edit_dialogs import ScalarDialog

        paths = self._selection()
        if self._session() is None or not paths:
            return
        dialog = ScalarDialog(op, self.targets(paths), self.window)
        self.through_dialog(dialog, lambda: [dialog.spec()])

    def initialize(self) -> None:
        """Re-initialize the selection (or every module of a type)."""
        from .dialogs.init_dialog import InitDialog

        session = self._session()
        if session is None:
            return
        paths = self._selection()
        targets = self.targets(paths)
        dialog = InitDialog(session, targets, self.window)
        self.through_dialog(dialog, lambda: [dialog.spec()])

    def set_trainable(self, trainable: bool) -> None:
        """Freeze or unfreeze the selection, BatchNorm modes too if that option is on."""
        paths = self._selection()
        if self._session() is None or not paths:
            return
        spec: dict[str, Any] = {"op": "unfreeze" if trainable else "freeze", "targets": paths}
        if self.bn_eval_action.isChecked():
            spec["bn_eval"] = True
        self.apply(spec)

    def tie(self) -> None:
        """Tie the selected tensor or module to another one, chosen from a list."""
        from .dialogs.edit_dialogs import ChooseNameDialog

        session = self._session()
        paths = self._selection()
        if session is None or len(paths) != 1:
            return
        target = paths[0]
        try:
            names = session.document.tie_candidates(target)
        except EditError as error:
            self.window.show_error(str(error))
            return
        if not names:
            self.window.show_error(f"tie: nothing in the document has the shape and type of "
                                   f"'{target}'")
            return
        dialog = ChooseNameDialog("Tie To", f"Make {target} share its values with:", names,
                                  self.window)
        self.through_dialog(dialog, lambda: [{"op": "tie", "target": target,
                                              "source": dialog.chosen()}])

    def untie(self) -> None:
        """Give each selected tied item its own copy (one step)."""
        paths = self._selection()
        if self._session() is None or not paths:
            return
        # Untying every member of a group would fail at the last one (it is no longer
        # tied): each group keeps its first member and the others get copies.
        model = self.window.tree_model
        remaining: dict[frozenset[str], set[str]] = {}
        planned = []
        for path in paths:
            info = model.info_of(model.index_of(path))
            if info is None or not info.tied:
                continue
            members = remaining.setdefault(frozenset({path, *info.tied_with}),
                                           {path, *info.tied_with})
            if len(members) >= 2:
                planned.append(path)
                members.discard(path)
        self.apply_all(f"Untie {len(planned)} items",
                       [{"op": "untie", "target": path} for path in planned])

    def replace(self) -> None:
        """Replace the selected module with a new layer."""
        from .dialogs.replace_dialog import ReplaceDialog

        session = self._session()
        paths = self._selection()
        if session is None or len(paths) != 1:
            return
        try:
            dialog = ReplaceDialog(session, paths[0], self.window)
        except EditError as error:
            self.window.show_error(str(error))
            return
        self.through_dialog(dialog, lambda: [dialog.spec()])

    def replace_head(self) -> None:
        """Replace the model's classifier."""
        from .dialogs.edit_dialogs import ReplaceHeadDialog

        session = self._session()
        if session is None or not session.can_apply("replace_head"):
            return
        dialog = ReplaceHeadDialog(session, self.window)
        self.through_dialog(dialog, lambda: [dialog.spec()])

    def load_weights(self, dialog: Any = None) -> None:
        """Load weights from a file and show the report.

        The file is read once in the background first (with progress and Cancel), so
        the edit itself, which must run on the GUI thread, reads it from the cache.
        When the engine refuses the edit, the same dialog comes back with what the
        user typed and the message beside the field at fault.
        """
        from .dialogs.load_dialog import LoadDialog

        if self._session() is None:
            return
        if dialog is None:
            dialog = LoadDialog(self.window.settings.last_folder("open"), self.window)
        if not base.run_dialog(dialog):
            return
        spec = dialog.spec()
        if self.window.tasks.busy:
            self._apply_load(spec, dialog)
            return
        self.window.tasks.run(read_through, spec["path"], name="read",
                              text=f"Reading {Path(spec['path']).name}…",
                              on_success=lambda _: self._apply_load(spec, dialog),
                              on_failure=lambda _: self._apply_load(spec, dialog))

    def _apply_load(self, spec: dict[str, Any], dialog: Any) -> None:
        from .dialogs.load_dialog import LoadReportDialog

        try:
            report = self.apply_or_raise("Load", [spec])
        except EditError as error:
            dialog.show_problem(str(error))
            self.load_weights(dialog)  # again, input kept
            return
        self.window.settings.set_last_folder("open", spec["path"])
        base.run_dialog(LoadReportDialog(report, Path(spec["path"]).name, self.window))

    def tensor_op(self, op: str) -> None:
        """A tensor operation on the selected tensor(s); several are one step."""
        from .dialogs.edit_dialogs import TensorOpDialog

        session = self._session()
        paths = self._selection()
        if session is None or not paths:
            return
        if op == "delete":
            if base.ask(self.window, "Delete", f"Delete {len(paths)} tensor(s)? (Undo brings "
                        "them back.)", "Delete", "Cancel"):
                self.apply({"op": "delete", "targets": paths})
            return
        if op == "cast" or len(paths) == 1:
            dialog = TensorOpDialog(op, paths, session, self.window)
            self.through_dialog(dialog, lambda: [dialog.spec()])
            return
        # One dialog per tensor, each applied when its OK is pressed (so a refusal stays
        # in its dialog), all inside one group: one undo step, or nothing if cancelled.
        with contextlib.suppress(_Cancelled), session.group(
                f"{op.capitalize()} {len(paths)} tensors"):
            for path in paths:
                dialog = TensorOpDialog(op, [path], session, self.window)
                dialog.on_accept = lambda dialog=dialog: session.apply(dialog.spec())
                if not base.run_dialog(dialog):
                    raise _Cancelled

    def attach(self) -> None:
        """Give a checkpoint its architecture (switches to model mode) and show the report."""
        from .dialogs.edit_dialogs import AttachDialog
        from .dialogs.load_dialog import LoadReportDialog

        session = self._session()
        if session is None or not session.can_apply("attach"):
            return
        dialog = AttachDialog(session, self.window)
        applied, report = self.through_dialog(dialog, lambda: [dialog.spec()])
        if applied and report is not None:
            base.run_dialog(LoadReportDialog(report, dialog.spec()["arch"], self.window))

    def _session(self) -> Session | None:
        return self.window.session
