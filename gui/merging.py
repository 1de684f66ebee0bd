"""Edit ▸ Merge Models… and the Adapters menu (Merge LoRA…, Extract LoRA…).

A merge is computed off the GUI thread (the edit's `prepare`, with progress and Cancel
in the status bar, the session refusing edits meanwhile), then applied on the GUI
thread as one undoable step, and its per-tensor report is shown (a table and the
per-layer overview plot). Cancel leaves the document as it was: nothing is applied
until every tensor is merged. A failure (an input that cannot be read, a tensor that
does not fit) brings the dialog back with what was typed and the line beside the field.

Merging a LoRA adapter is an edit like the others (applied when OK is pressed, refused
beside the field); extracting one reads two files and writes a folder, in the
background, and changes no document.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from .dialogs import base

if TYPE_CHECKING:
    from .main_window import MainWindow


class MergeActions(QObject):
    """The merge and adapter actions of one main window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.merge_action = self._action(
            "Merge Models…", self.merge,
            "Merge checkpoints into the document (linear, task arithmetic, TIES, DARE, "
            "SLERP, passthrough), with a per-tensor report")
        self.merge_lora_action = self._action(
            "Merge LoRA…", self.merge_lora,
            "Fold a PEFT LoRA adapter folder into the weights (as peft's merge_and_unload)")
        self.extract_lora_action = self._action(
            "Extract LoRA…", self.extract_lora,
            "Write a PEFT LoRA adapter folder from a fine-tune and its base (truncated SVD)")
        #: the last report shown (a merge's, an adapter's), for the status bar and tests
        self.report: dict[str, Any] | None = None
        #: the last report dialog (kept for screenshots and tests)
        self.report_dialog: Any = None

    def _action(self, text: str, slot: Any, tip: str) -> QAction:
        action = QAction(text, self.window)
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(lambda checked=False: slot())
        return action

    def fill_edit_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        menu.addAction(self.merge_action)

    def fill_adapters_menu(self, menu: QMenu) -> None:
        menu.addAction(self.merge_lora_action)
        menu.addAction(self.extract_lora_action)

    def update_enabled(self) -> None:
        """Merges need a document that accepts edits; extracting needs none."""
        session = self.window.session
        free = session is not None and session.busy_reason is None
        self.merge_action.setEnabled(free)
        self.merge_lora_action.setEnabled(free)
        self.extract_lora_action.setEnabled(True)

    def _folder(self) -> str:
        return self.window.settings.last_folder("open") or str(Path.home())

    def _refuse_while_busy(self) -> bool:
        if self.window.tasks.busy:
            self.window.show_error(f"Please wait: {self.window.tasks.task.name} is still "
                                   "running (or cancel it).")
            return True
        return False

    # ------------------------------------------------------------------ merge
    def merge(self, dialog: Any = None) -> None:
        """Ask for a merge, compute it in the background, apply it, show the report."""
        from .dialogs.merge_dialog import MergeDialog

        session = self.window.session
        if session is None or self._refuse_while_busy():
            return
        if dialog is None:
            dialog = MergeDialog(self._folder(), self.window)
        if not base.run_dialog(dialog):
            return
        from engine.edits import build_edit
        from engine.errors import EditError

        try:
            edit = build_edit(dialog.spec())
        except (ValueError, EditError) as error:
            dialog.show_problem(str(error))
            self.merge(dialog)
            return

        position = session.history.position

        def job(progress: Any = None) -> Any:
            with session.busy("merging"):
                edit.prepare(session.document, progress)
            return edit

        def prepared(edit: Any) -> None:
            if self.window.session is not session:
                return  # another document was opened meanwhile: nothing to apply to
            if session.history.position != position:
                failed("merge: the document changed while the merge was computed; "
                       "press OK to merge again")
                return
            if not self._undo_fits(session, edit.prepared_undo_bytes(session.document)):
                self.window.statusBar().showMessage("Merge not applied", 5000)
                return
            try:
                report = session.apply(edit)
            except EditError as error:
                failed(str(error))
                return
            self.show_merge_report(report)

        def failed(message: str) -> None:
            dialog.show_problem(message)
            self.merge(dialog)

        self.window.tasks.run(job, name="merge", text=f"Merging ({dialog.method()})…",
                              on_success=prepared, on_failure=failed,
                              on_cancel=lambda: self.window.statusBar().showMessage(
                                  "Merge cancelled; the document is unchanged", 5000))

    def _undo_fits(self, session: Any, cost: int | None) -> bool:
        """True when the merge's undo data fits the history's budget, or the user
        accepts a merge that cannot be undone (a model bigger than the budget)."""
        from .formatting import format_bytes

        budget = session.history.budget_bytes
        if cost is None or cost <= budget:
            return True
        return base.ask(self.window, "Merge Models",
                        f"Undoing this merge would keep {format_bytes(cost)} of old values, "
                        f"more than the history's budget ({format_bytes(budget)}): it could "
                        "not be undone. Merge anyway?", "Merge", "Cancel")

    def show_merge_report(self, report: dict[str, Any]) -> None:
        from .dialogs.report_dialog import merge_report_dialog

        self.report = report
        self.window.statusBar().showMessage(
            f"Merged {report['merged']} tensors ({report['method']}); Undo reverts it", 15000)
        self.report_dialog = merge_report_dialog(report, self.window)
        base.run_dialog(self.report_dialog)

    # ------------------------------------------------------------------ adapters
    def merge_lora(self) -> None:
        """Ask for an adapter folder and merge it (one undoable step); show the report."""
        from .dialogs.lora_dialogs import MergeLoraDialog
        from .dialogs.report_dialog import lora_merge_report_dialog

        session = self.window.session
        if session is None or self._refuse_while_busy():
            return
        dialog = MergeLoraDialog(self._folder(), self.window)
        applied, report = self.window.edit_actions.through_dialog(
            dialog, lambda: [dialog.spec()], "Merge LoRA")
        if not applied:
            return
        self.window.settings.set_last_folder("open", dialog.spec()["adapter"])
        self.report = report
        self.window.statusBar().showMessage(
            f"Merged the adapter into {len(report['merged'])} weight(s); Undo reverts it", 15000)
        self.report_dialog = lora_merge_report_dialog(report, self.window)
        base.run_dialog(self.report_dialog)

    def extract_lora(self, dialog: Any = None) -> None:
        """Ask for a base, a fine-tune and a rank; write the adapter in the background."""
        from .dialogs.lora_dialogs import ExtractLoraDialog

        if self._refuse_while_busy():
            return
        if dialog is None:
            dialog = ExtractLoraDialog(self._folder(), self.window.document_path, self.window)
        if not base.run_dialog(dialog):
            return
        options = dialog.options()

        def job(progress: Any = None) -> dict[str, Any]:
            from engine.lora.extract import extract, write_adapter

            extraction = extract(options["base"], options["tuned"], options["rank"],
                                 options.get("include"), options.get("exclude"),
                                 progress=progress)
            folder = write_adapter(options["output"], extraction)
            return {"output": str(folder), **extraction.report()}

        def extracted(report: dict[str, Any]) -> None:
            from .dialogs.report_dialog import extraction_report_dialog

            self.report = report
            self.window.statusBar().showMessage(
                f"Wrote {Path(report['output']).name} (rank {report['rank']})", 15000)
            self.report_dialog = extraction_report_dialog(report, report["output"], self.window)
            base.run_dialog(self.report_dialog)

        def failed(message: str) -> None:
            dialog.show_problem(message)
            self.extract_lora(dialog)

        self.window.tasks.run(job, name="extract", text="Extracting a LoRA adapter…",
                              on_success=extracted, on_failure=failed,
                              on_cancel=lambda: self.window.statusBar().showMessage(
                                  "Extraction cancelled; nothing was written", 5000))
