"""A per-tensor report as a table and as the per-layer overview plot (merges, adapters).

`ReportDialog` shows one row per tensor (its name, shape and figures) and, for each
figure the caller names, one bar per tensor in the overview plot of the Plots dock
(`OverviewView`), chosen with a box above it. The merge report gives the relative change
of every merged tensor against each input; an adapter report the relative change of
each adapted weight, or the relative error of each extracted factor.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

#: a figure that has no value (a reference of all zeros, an input without the tensor)
MISSING = "–"


def figure_text(value: float | None) -> str:
    """A figure as the table shows it: four significant digits, or a dash."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.4g}"


class ReportDialog(QDialog):
    """A table of tensors and, per figure, a bar per tensor.

    Parameters
    ----------
    title : the window title
    summary : one or two lines above the table
    headers : the table's column titles
    rows : one list of cell texts per tensor (the first cell is its name)
    plots : {figure title: [(tensor name, value or None), ...]} for the plot tab; empty:
        no plot tab
    notes : lines below the table (skipped tensors, notes of the engine)
    """

    def __init__(self, title: str, summary: str, headers: list[str], rows: list[list[str]],
                 plots: dict[str, list[tuple[str, float | None]]] | None = None,
                 notes: list[str] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.plots = dict(plots or {})
        layout = QVBoxLayout(self)
        self.summary = QLabel(summary, self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.tabs = QTabWidget(self)
        layout.addWidget(self.tabs, 1)

        self.table = QTableWidget(len(rows), len(headers), self)
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(headers)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tabs.addTab(self.table, "Table")

        self.overview: Any = None
        self.figure_box: QComboBox | None = None
        if self.plots:
            self._add_plot_tab()
        if notes:
            note = QLabel("\n".join(notes), self)
            note.setWordWrap(True)
            note.setObjectName("reportNotes")
            layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        self.resize(900, 560)

    def _add_plot_tab(self) -> None:
        # pyqtgraph is imported with the first report, not with the window.
        from ..plots.overview import OverviewView

        page = QWidget(self)
        box = QComboBox(page)
        box.addItems(list(self.plots))
        row = QHBoxLayout()
        row.addWidget(QLabel("Per layer:", page))
        row.addWidget(box, 1)
        self.overview = OverviewView(page)
        # The overview's own choices (norm, std...) are the Plots dock's; here the bars
        # are the report's figures, chosen with the box above.
        for widget in (self.overview.measure_box, self.overview.which_box):
            widget.hide()
        for label in self.overview.findChildren(QLabel):
            if label.text() in ("measure", "of"):
                label.hide()
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(self.overview, 1)
        self.figure_box = box
        box.currentTextChanged.connect(self.show_figure)
        self.tabs.addTab(page, "Per layer")
        self.show_figure(box.currentText())

    def show_figure(self, title: str) -> None:
        """Draw the bars of figure `title` (a tensor without a value gets a cross)."""
        if self.overview is None or title not in self.plots:
            return
        values = [(name, math.nan if value is None else float(value))
                  for name, value in self.plots[title]]
        self.overview.set_values(values, title)

    def cell(self, row: int, column: int) -> str:
        """The text of one cell (for tests)."""
        item = self.table.item(row, column)
        return item.text() if item is not None else ""


def merge_report_dialog(report: dict[str, Any], parent: QWidget | None = None) -> ReportDialog:
    """The report of a `merge` edit: each merged tensor's relative change against each
    input, as a table and per layer."""
    from pathlib import Path

    tensors = report["tensors"]
    labels = list(tensors[0]["relative_change"]) if tensors else []
    names = {label: "self (before)" if label == "self" else Path(label).name
             for label in labels}
    headers = ["Tensor", "Shape", *(f"vs {names[label]}" for label in labels)]
    rows = [[tensor["name"], "x".join(map(str, tensor["shape"])) or "scalar",
             *(figure_text(tensor["relative_change"].get(label)) for label in labels)]
            for tensor in tensors]
    plots = {f"relative change against {names[label]}":
             [(tensor["name"], tensor["relative_change"].get(label)) for tensor in tensors]
             for label in labels}
    summary = (f"{report['method']}: merged {report['merged']} tensors"
               + (f", kept {len(report['kept'])} that are not floating-point" if report["kept"]
                  else "")
               + (f", skipped {len(report['skipped'])}" if report["skipped"] else "")
               + (f"; seed {report['seed']}" if report.get("seed") is not None else "")
               + ". Relative change: ||merged − input|| / ||input|| (0: unchanged). "
               "Undo restores the document.")
    notes = [f"skipped {name}: {why}" for name, why in report["skipped"]]
    if report.get("unused"):
        notes.append(f"{len(report['unused'])} tensor(s) of the inputs are not in the "
                     "document: " + ", ".join(report["unused"][:5])
                     + (" ..." if len(report["unused"]) > 5 else ""))
    return ReportDialog("Merge Report", summary, headers, rows, plots, notes, parent)


def lora_merge_report_dialog(report: dict[str, Any],
                             parent: QWidget | None = None) -> ReportDialog:
    """The report of a `merge_lora` edit: each adapted weight's relative change."""
    tensors = report["tensors"]
    rows = [[tensor["name"], "x".join(map(str, tensor["shape"])),
             figure_text(tensor["relative_change"])] for tensor in tensors]
    scaling = ", ".join(f"{value:g}" for value in report["scaling"])
    summary = (f"Merged the adapter into {len(tensors)} weight(s): rank {report['rank']}, "
               f"scaling {scaling}, scale {report['scale']:g}. Relative change: "
               "||W' − W|| / ||W||. Undo restores the document.")
    plots = {"relative change of the weight":
             [(tensor["name"], tensor["relative_change"]) for tensor in tensors]}
    return ReportDialog("LoRA Merge Report", summary, ["Weight", "Shape", "Relative change"],
                        rows, plots, None, parent)


def extraction_report_dialog(report: dict[str, Any], folder: str,
                             parent: QWidget | None = None) -> ReportDialog:
    """The report of an extracted adapter: each weight's relative error at the rank."""
    weights = report["weights"]
    rows = [[weight["name"], weight["kind"], "x".join(map(str, weight["shape"])),
             figure_text(weight["relative_error"]), weight["svd"]] for weight in weights]
    summary = (f"Wrote {folder}: rank {report['rank']}, {len(weights)} weight(s). Relative "
               "error: ||delta − B @ A|| / ||delta|| of the rank-r approximation.")
    notes = [f"skipped {name}: {why}" for name, why in report["skipped"]] + list(report["notes"])
    plots = {"relative error of the rank-r approximation":
             [(weight["name"], weight["relative_error"]) for weight in weights]}
    return ReportDialog("Extracted LoRA Adapter", summary,
                        ["Weight", "Kind", "Shape", "Relative error", "SVD"], rows, plots,
                        notes, parent)
