"""Load Weights: the options of a `load` edit, and the report it returns.

Names in the file can be stripped of a prefix, renamed by regular expressions
(one `pattern -> replacement` per line) and filtered by globs before they are
matched to the document. The report lists what was loaded, missing, unexpected
and skipped for a different shape.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import base
from .fields import FormDialog, edit_field, line_edit, names_list


def parse_rename(text: str) -> list[list[str]]:
    """'^encoder\\. -> backbone.' lines -> [['^encoder\\.', 'backbone.']]."""
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "->" not in line:
            raise ValueError(f"Rename line {number}: expected 'pattern -> replacement'")
        pattern, _, replacement = line.partition("->")
        rules.append([pattern.strip(), replacement.strip()])
    return rules


class LoadDialog(FormDialog):
    """Build a `load` edit."""

    def __init__(self, folder: str, parent: QWidget | None = None) -> None:
        super().__init__("Load Weights", parent,
                         intro="Copy matching tensors from a file into the document.")
        self.folder = folder
        self.path_field = self.add_path_field(
            edit_field("load", "path", line_edit("", "a .safetensors or .pt file")), self._browse)
        self.strict = QCheckBox("Every name must match (strict)", self)
        self.skip = QCheckBox("Skip tensors of another shape", self)
        self.form.addRow(self.strict)
        self.form.addRow(self.skip)
        self.add_field(edit_field("load", "strip_prefix",
                             line_edit("", "e.g. module. (comma-separated)"), names_list,
                             optional=True))
        self.add_field(edit_field("load", "include", line_edit("", "globs, e.g. layer4.*"),
                             names_list, optional=True))
        self.add_field(edit_field("load", "exclude", line_edit("", "globs, e.g. fc.*"),
                             names_list, optional=True))
        self.rename_edit = QPlainTextEdit(self)
        self.rename_edit.setPlaceholderText("one rule per line: ^encoder\\. -> backbone.")
        self.rename_edit.setMaximumHeight(70)
        self.form.addRow("Rename:", self.rename_edit)
        self.finish_layout()
        self.resize(480, self.sizeHint().height())

    def _browse(self) -> None:
        path = base.choose_open_path(self, "Load Weights From", self.folder,
                                     "Weights (*.safetensors *.pt *.pth *.bin *.ckpt);;"
                                     "All files (*)")
        if path:
            self.path_field.set_text(path)

    def set_rename(self, text: str) -> None:
        self.rename_edit.setPlainText(text)

    def check(self) -> None:
        self.spec()

    def spec(self) -> dict[str, Any]:
        values = self.values()
        spec: dict[str, Any] = {"op": "load", "path": values.pop("path").strip()}
        spec.update({key: value for key, value in values.items() if value})
        if self.strict.isChecked():
            spec["strict"] = True
        if self.skip.isChecked():
            spec["skip_mismatched"] = True
        rename = parse_rename(self.rename_edit.toPlainText())
        if rename:
            spec["rename"] = rename
        return spec


class LoadReportDialog(QDialog):
    """What a `load` did: counts, and the names in each group."""

    def __init__(self, report: dict[str, Any], path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Load Report")
        self.report = report
        layout = QVBoxLayout(self)
        groups = self.groups()
        summary = ", ".join(f"{len(names)} {title.lower()}" for title, names in groups.items())
        self.summary = QLabel(f"Loaded from {path}: {summary}.", self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        tabs = QTabWidget(self)
        for title, names in groups.items():
            text = QPlainTextEdit("\n".join(names) or "(none)", self)
            text.setReadOnly(True)
            tabs.addTab(text, f"{title} ({len(names)})")
        layout.addWidget(tabs)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok, self)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        self.resize(520, 400)

    def groups(self) -> dict[str, list[str]]:
        """Names per outcome: Loaded, Missing, Unexpected, Skipped."""
        def names(key: str) -> list[str]:
            value = self.report.get(key) or []
            if isinstance(value, int):
                return [f"{value} tensors"]
            return [item["name"] if isinstance(item, dict) and "name" in item else str(item)
                    for item in value]

        result = {"Loaded": names("loaded"), "Missing": names("missing"),
                  "Unexpected": names("unexpected")}
        mismatched = self.report.get("mismatched") or []
        result["Skipped"] = [
            f"{item['name']}: file {tuple(item.get('file_shape', ()))}, "
            f"document {tuple(item.get('model_shape', ()))}" if isinstance(item, dict)
            else str(item) for item in mismatched]
        return result
