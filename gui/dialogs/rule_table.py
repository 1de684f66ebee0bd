"""The rule table of the Initialize dialog: per-type `init` rules, one row each.

Each row is one rule of `{"op": "init", "rules": [...]}`: module types (class names,
comma-separated), the parameter(s), the initializer and its arguments as
`name=value` pairs. The rows run in order on every module `model.apply` visits.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.edits import METHODS

from .fields import parse_literal

COLUMNS = ("Types", "Param", "Method", "Arguments")
#: the rules of the PyTorch tutorials' CNN `weight_init` (torchvision's resnet init)
TUTORIAL_CNN_RULES: list[dict[str, Any]] = [
    {"types": ["Conv2d"], "param": "weight", "method": "kaiming_normal",
     "args": {"mode": "fan_out", "nonlinearity": "relu"}},
    {"types": ["BatchNorm2d"], "param": "weight", "method": "constant", "args": {"val": 1}},
    {"types": ["BatchNorm2d"], "param": "bias", "method": "zeros"},
    {"types": ["Linear"], "param": "weight", "method": "normal", "args": {"std": 0.01}},
    {"types": ["Linear"], "param": "bias", "method": "zeros"},
]


def args_text(args: dict[str, Any]) -> str:
    """`{"mode": "fan_out", "val": 1}` -> `mode=fan_out, val=1`."""
    return ", ".join(f"{key}={value}" for key, value in args.items())


def parse_args(text: str) -> dict[str, Any]:
    """`mode=fan_out, std=0.01` -> `{"mode": "fan_out", "std": 0.01}`; ValueError if bad."""
    args: dict[str, Any] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, equals, value = part.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise ValueError(f"expected name=value pairs such as std=0.01, got '{part}'")
        args[key.strip()] = parse_literal(value)
    return args


class RuleTable(QWidget):
    """Editable rows of init rules, with Add, Remove and a preset of the tutorials' rules.

    Parameters
    ----------
    types : module class names of the document, offered in each row's Types cell
    """

    def __init__(self, types: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.types = types
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(True)
        add = QPushButton("Add Rule", self)
        add.clicked.connect(lambda: self.add_rule())
        remove = QPushButton("Remove Rule", self)
        remove.clicked.connect(self.remove_selected)
        preset = QPushButton("Tutorial CNN Rules", self)
        preset.setToolTip("kaiming_normal for Conv2d weights, 1 and 0 for BatchNorm2d, "
                          "normal(std=0.01) and 0 for Linear: the PyTorch tutorials' weight_init")
        preset.clicked.connect(lambda: self.set_rules(TUTORIAL_CNN_RULES))
        buttons = QHBoxLayout()
        for button in (add, remove, preset):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    # ------------------------------------------------------------------ rows
    def add_rule(self, rule: dict[str, Any] | None = None) -> None:
        """Append a row (empty, or showing `rule`)."""
        rule = rule or {"types": [self.types[0]] if self.types else [], "param": "weight",
                        "method": "normal"}
        row = self.table.rowCount()
        self.table.insertRow(row)
        types = rule.get("types") or []
        types = [types] if isinstance(types, str) else types
        self.table.setItem(row, 0, QTableWidgetItem(", ".join(types)))
        param = rule.get("param", "")
        self.table.setItem(row, 1, QTableWidgetItem(
            ", ".join(param) if isinstance(param, list) else str(param)))
        method = QComboBox(self.table)
        method.addItems(list(METHODS))
        method.setCurrentText(rule.get("method", "normal"))
        self.table.setCellWidget(row, 2, method)
        self.table.setItem(row, 3, QTableWidgetItem(args_text(rule.get("args") or {})))

    def remove_selected(self) -> None:
        """Remove the selected rows (the last row when none is selected)."""
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        if not rows and self.table.rowCount():
            rows = [self.table.rowCount() - 1]
        for row in rows:
            self.table.removeRow(row)

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        """Show exactly `rules`."""
        self.table.setRowCount(0)
        for rule in rules:
            self.add_rule(rule)

    def set_cell(self, row: int, column: str, text: str) -> None:
        """Type `text` into a cell (for keyboard-free use, e.g. tests)."""
        position = COLUMNS.index(column)
        if position == 2:
            widget = self.table.cellWidget(row, 2)
            assert isinstance(widget, QComboBox)
            widget.setCurrentText(text)
        else:
            self.table.setItem(row, position, QTableWidgetItem(text))

    # ------------------------------------------------------------------ value
    def rules(self) -> list[dict[str, Any]]:
        """The rules as the engine takes them; ValueError names the row and column."""
        if not self.table.rowCount():
            raise ValueError("Rules: add at least one rule (or use the tutorial's)")
        rules = []
        for row in range(self.table.rowCount()):
            where = f"Rule {row + 1}"
            types = [name.strip() for name in self._text(row, 0).split(",") if name.strip()]
            if not types:
                raise ValueError(f"{where}: Types: give a module class such as Conv2d")
            widget = self.table.cellWidget(row, 2)
            method = widget.currentText() if isinstance(widget, QComboBox) else ""
            rule: dict[str, Any] = {"types": types}
            params = [name.strip() for name in self._text(row, 1).split(",") if name.strip()]
            if method != "reset":
                if not params:
                    raise ValueError(f"{where}: Param: give a parameter such as weight")
                rule["param"] = params[0] if len(params) == 1 else params
            rule["method"] = method
            try:
                args = parse_args(self._text(row, 3))
            except ValueError as error:
                raise ValueError(f"{where}: Arguments: {error}") from None
            if args:
                rule["args"] = args
            rules.append(rule)
        return rules

    def _text(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""
