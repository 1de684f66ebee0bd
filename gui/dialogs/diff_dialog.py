"""Compare With File: the differences between the document and a checkpoint file.

The comparison (`engine.diff.diff_sessions`) runs in a background Task while the
document is held busy, so no edit can change it half-way; this dialog only shows
the result: one row per difference, grouped by kind, with shapes, dtypes, changed
elements and the largest absolute difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.document import shape_text

from ..formatting import format_number

if TYPE_CHECKING:
    from engine.session import Session


def compare_job(diff_module: Any, session: Session, path: str,
                progress: Any = None) -> dict[str, Any]:
    """Open `path` in checkpoint mode and compare the document with it (worker thread)."""
    from engine.session import Session as SessionClass

    other = SessionClass.open(path)
    with session.busy("comparing"):
        return diff_module.diff_sessions(session, other, progress=progress,
                                         labels=("document", str(path)))


_GROUPS = (("changed", "Changed values"), ("shape_changed", "Different shape"),
           ("dtype_changed", "Different dtype"), ("renamed", "Renamed"),
           ("added", "Only in the file"), ("removed", "Only in the document"))


class DiffDialog(QDialog):
    """The result of a comparison, grouped by kind of difference."""

    def __init__(self, result: dict[str, Any], path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare With File")
        self.comparison = result
        layout = QVBoxLayout(self)
        counts = {key: len(result.get(key) or []) for key, _ in _GROUPS}
        if result.get("identical"):
            summary = f"The document and {path} hold identical tensors " \
                      f"({result.get('unchanged', 0):,} compared bit for bit)."
        else:
            parts = [f"{counts[key]} {title.lower()}" for key, title in _GROUPS if counts[key]]
            summary = f"Compared with {path}: " + ", ".join(parts) + \
                f"; {result.get('unchanged', 0):,} identical."
        self.summary = QLabel(summary, self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Name", "Document", "File", "Changed elements",
                                   "Max |difference|"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for key, title in _GROUPS:
            rows = result.get(key) or []
            if not rows:
                continue
            group = QTreeWidgetItem(self.tree, [f"{title} ({len(rows)})"])
            for row in rows:
                QTreeWidgetItem(group, self._columns(key, row))
            group.setExpanded(len(rows) <= 200)
        layout.addWidget(self.tree, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        self.resize(760, 480)

    @staticmethod
    def _columns(key: str, row: Any) -> list[str]:
        if key in ("added", "removed"):
            return [str(row), "" if key == "added" else "present",
                    "present" if key == "added" else "", "", ""]
        if key == "renamed":
            return [f"{row['from']} → {row['to']}", row["from"], row["to"], "", ""]
        if key == "shape_changed":
            return [row["name"], f"{shape_text(row['a_shape'])} {row.get('a_dtype', '')}",
                    f"{shape_text(row['b_shape'])} {row.get('b_dtype', '')}", "", ""]
        if key == "dtype_changed":
            return [row["name"], str(row["a_dtype"]), str(row["b_dtype"]),
                    format_number(row.get("changed_elements")),
                    format_number(row.get("max_abs_diff"))]
        if row.get("changed_elements") is None:  # a huge view not compared element-wise
            return [row["name"], "", "", row.get("note", "not compared"), "–"]
        return [row["name"], "", "", f"{row['changed_elements']:,} of {row['numel']:,}",
                format_number(row.get("max_abs_diff"))]
