"""File ▸ Export for Deployment: the dialog, the export off the GUI thread, the result.

The export runs as a background Task (progress and Cancel in the status bar; the
engine refuses edits meanwhile). Success shows the verification (differences, eval
mode, tie check); a failure shows its one line and offers the dialog again with
another format chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from .dialogs import base

if TYPE_CHECKING:
    from engine.export import ExportReport

    from .main_window import MainWindow


class DeployExport(QObject):
    """The Export for Deployment action of one main window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.action = QAction("Export for Deployment…", window)
        tip = "Write the model as .pt2, ONNX or TorchScript, verified against the model"
        self.action.setStatusTip(tip)
        self.action.setToolTip(tip)
        self.action.triggered.connect(lambda checked=False: self.choose_and_export())
        #: the last result, for the status bar and tests
        self.report: ExportReport | None = None

    def update_enabled(self) -> None:
        session = self.window.session
        self.action.setEnabled(session is not None and session.document.has_modules)

    def choose_and_export(self, fmt: str = "pt2", path: str | None = None,
                          problem: str = "", options: dict[str, Any] | None = None) -> None:
        """Ask for the format and options, then export in the background."""
        from .dialogs.export_dialog import ExportDialog

        session = self.window.session
        if session is None:  # the action is off for a checkpoint; the engine refuses one too
            return
        if self.window.tasks.busy:
            self.window.show_error(f"Please wait: {self.window.tasks.task.name} is still "
                                   "running (or cancel it).")
            return
        dialog = ExportDialog(path or self._suggested_path(), fmt, problem, self.window)
        if options:
            _fill(dialog, options)
        if not base.run_dialog(dialog):
            return
        self.export(dialog.path(), dialog.format(), dialog.options())

    def export(self, path: str, fmt: str, options: dict[str, Any]) -> None:
        """Export to `path` in the background; show the result or the failure."""
        session = self.window.session
        if session is None:
            return

        # engine.export imports torch: here, not when the window is built (it must paint
        # before torch is imported).
        from engine.export import FORMATS, export_model

        def job(progress: Any = None) -> ExportReport:
            return export_model(session, path, fmt, progress=progress, **options)

        def exported(report: ExportReport) -> None:
            self.report = report
            self.window.settings.set_last_folder("deploy", path)
            worst = max(report.differences, key=lambda difference: difference.max_rel)
            summary = (f"Wrote {Path(path).name}: verified with {report.runtime}, max rel "
                       f"diff {worst.max_rel:.3g} (tolerance {report.tolerance:.3g}) at batch "
                       f"{', '.join(str(d.batch) for d in report.differences)}; "
                       f"{report.mode_text}")
            self.window.statusBar().showMessage(summary, 15000)
            base.show_info(self.window, "Exported for Deployment", summary,
                           report.format_text())

        def failed(message: str) -> None:
            others = [name for name in FORMATS if name != fmt]
            self.choose_and_export(others[0], path, message, options)

        self.window.tasks.run(job, name="export", text=f"Exporting {Path(path).name}…",
                              on_success=exported, on_failure=failed,
                              on_cancel=lambda: self.window.statusBar().showMessage(
                                  "Export cancelled; nothing was written", 5000))

    def _suggested_path(self) -> str:
        folder = Path(self.window.settings.last_folder("deploy") or ".")
        current = self.window.document_path
        stem = Path(current).name.split(".")[0] if current else "model"
        return str(folder / f"{stem or 'model'}.pt2")


def _fill(dialog: Any, options: dict[str, Any]) -> None:
    """Put the options of a previous attempt back into the dialog's fields."""
    if "input_shape" in options:
        dialog.set_field("input_shape", ", ".join(str(size) for size in options["input_shape"]))
    if "batch_size" in options:
        dialog.set_field("batch_size", str(options["batch_size"]))
    if "opset" in options:
        dialog.set_field("opset", str(options["opset"]))
    dialog.dynamic.setChecked(bool(options.get("dynamic_batch")))
