"""Merge Models: the method, the base, the models with their weight and density, the
method's parameters (t, lambda, normalize), include/exclude globs.

The form makes the spec of the `merge` edit (docs/merge.md); its fields are mergekit's
names. The engine's own check (`engine.merge.spec.parse_spec`) runs when OK is pressed,
so a bad value is refused with one line under the field at fault, before anything is
read; files that cannot be read are refused when the merge runs, and the dialog comes
back with the line under the model or base it names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.merge.methods import METHOD_NAMES, METHODS
from engine.merge.spec import SELF, parse_spec

from . import base
from .fields import Field, FieldError, FormDialog, combo, edit_field, line_edit, names_list, number

#: the dtypes offered to compute in (the first: the inputs' promoted dtype, as mergekit)
DTYPES = ("inputs' dtype", "float32", "bfloat16", "float16", "float64")
#: the choices of `normalize` (the first: the method's default)
NORMALIZE = ("method's default", "true", "false")
#: model files offered by Add File…
MODEL_FILES = "Checkpoints (*.safetensors *.json *.pt *.pth *.bin *.ckpt);;All files (*)"

_COLUMNS = ("Model", "Weight", "Density")


class ModelsField(Field):
    """The models of the merge: a table of path, weight and density, with buttons."""

    def __init__(self, dialog: MergeDialog) -> None:
        box = QWidget(dialog)
        self.table = QTableWidget(0, len(_COLUMNS), box)
        self.table.setHorizontalHeaderLabels(list(_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(130)
        self.table.setToolTip("The models to merge, in order; a path is a .safetensors file, "
                              "a sharded index or a Hugging Face folder; \"self\" is the open "
                              "document as it is now. Weight and density: mergekit's "
                              "per-model parameters.")
        self.add_file = QPushButton("Add File…", box)
        self.add_folder = QPushButton("Add Folder…", box)
        self.add_self = QPushButton("Add This Document", box)
        self.remove = QPushButton("Remove", box)
        buttons = QHBoxLayout()
        for button in (self.add_file, self.add_folder, self.add_self, self.remove):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        super().__init__("models", "Models", box)
        self.dialog = dialog
        self.add_file.clicked.connect(lambda: self._browse(False))
        self.add_folder.clicked.connect(lambda: self._browse(True))
        self.add_self.clicked.connect(lambda: self.add_model(SELF))
        self.remove.clicked.connect(self._remove_selected)

    # ------------------------------------------------------------------ editing
    def add_model(self, path: str, weight: str = "1", density: str = "1") -> None:
        """Add a row (what Add File… does once a file is chosen)."""
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, text in enumerate((path, weight, density)):
            self.table.setItem(row, column, QTableWidgetItem(text))
        self.dialog.update_enabled()

    def set_cell(self, row: int, column: str, text: str) -> None:
        """Type `text` into a cell ('Model', 'Weight' or 'Density')."""
        self.table.item(row, _COLUMNS.index(column)).setText(text)

    def rows(self) -> list[tuple[str, str, str]]:
        return [tuple(self.table.item(row, column).text().strip()
                      for column in range(len(_COLUMNS)))  # type: ignore[misc]
                for row in range(self.table.rowCount())]

    def _browse(self, folder: bool) -> None:
        start = self.dialog.folder
        path = base.choose_open_path(self.dialog, "Add a Model to Merge", start, MODEL_FILES,
                                     directory=folder)
        if path:
            self.add_model(path)

    def _remove_selected(self) -> None:
        for row in sorted({index.row() for index in self.table.selectedIndexes()},
                          reverse=True):
            self.table.removeRow(row)
        self.dialog.update_enabled()

    # ------------------------------------------------------------------ Field
    def text(self) -> str:
        return "\n".join(row[0] for row in self.rows())

    def set_text(self, text: str) -> None:
        self.table.setRowCount(0)
        for path in filter(None, (line.strip() for line in text.splitlines())):
            self.add_model(path)

    def is_given(self) -> bool:
        return True

    def value(self) -> list[dict[str, Any]]:
        """The models as the edit's `models` list; raises FieldError naming the row."""
        per_model = METHODS[self.dialog.method()].per_model
        models = []
        if not self.rows():
            raise FieldError(self, "Models: add at least one model")
        for position, (path, weight, density) in enumerate(self.rows(), start=1):
            if not path:
                raise FieldError(self, f"Models: row {position} has no path")
            if path != SELF and not Path(path).expanduser().exists():
                raise FieldError(self, f"Models: row {position}: no file or folder {path}")
            model: dict[str, Any] = {"path": path if path == SELF
                                     else str(Path(path).expanduser())}
            for key, text in (("weight", weight), ("density", density)):
                if key not in per_model or not text:
                    continue
                try:
                    model[key] = number(text)
                except ValueError as error:
                    raise FieldError(self, f"Models: row {position} {key}: {error}") from None
            models.append(model)
        return models


class MergeDialog(FormDialog):
    """Ask for a merge; `spec()` is the `merge` edit it describes.

    Parameters
    ----------
    folder : where Browse… starts
    """

    def __init__(self, folder: str = "", parent: QWidget | None = None) -> None:
        intro = ("Merge models into the open document, tensor by tensor, with mergekit's "
                 "methods. \"self\" is the document as it is now. The merge is computed in "
                 "the background and applied as one step that Undo reverts.")
        super().__init__("Merge Models", parent, intro)
        self.folder = folder
        self.method_field = self.add_field(edit_field("merge", "method",
                                                      combo(METHOD_NAMES, "linear")))
        self.base_field = self.add_path_field(edit_field("merge", "base", line_edit(
            "", "none (linear, passthrough); a file, a folder or self"), optional=True),
            self._browse_base)
        self.models_field = ModelsField(self)
        self.fields["models"] = self.models_field
        self.form.addRow("Models:", self.models_field.widget)
        self.t_field = self.add_field(Field("t", "t", line_edit(
            "", "0 = base, 1 = the other model", "slerp: where between the base (0) and the "
            "other model (1)"), number, optional=True))
        self.lambda_field = self.add_field(Field("lambda", "lambda", line_edit(
            "", "1", "task arithmetic, ties, DARE: scales the merged task vector"), number,
            optional=True))
        self.normalize_field = self.add_field(Field("normalize", "normalize", combo(NORMALIZE)))
        self.normalize_field.widget.setToolTip("Divide by the sum of the weights (linear and "
                                               "ties: true by default)")
        self.include_field = self.add_field(edit_field("merge", "include", line_edit(
            "", "every tensor, e.g. model.layers.*"), names_list, optional=True))
        self.exclude_field = self.add_field(edit_field("merge", "exclude", line_edit(
            "", "none, e.g. *.embed_tokens.weight"), names_list, optional=True))
        self.dtype_field = self.add_field(edit_field("merge", "dtype", combo(DTYPES)))
        self.seed_field = self.add_field(edit_field("merge", "seed", line_edit(
            "", "drawn and recorded"), _seed, optional=True))
        self.skip = QCheckBox("Skip tensors missing from an input or of another shape "
                              "(reported) instead of refusing the merge", self)
        self.skip_field = Field("skip_mismatched", "Skip mismatched", self.skip)
        self.fields["skip_mismatched"] = self.skip_field
        self.form.addRow("", self.skip)
        self.finish_layout()
        self.models_field.add_model(SELF)
        self.method_field.widget.currentTextChanged.connect(lambda _: self.update_enabled())
        self.update_enabled()
        self.resize(720, self.sizeHint().height())

    def method(self) -> str:
        return self.method_field.text()

    def update_enabled(self) -> None:
        """Offer what the method takes: a base, t, lambda, normalize, per-model density."""
        info = METHODS[self.method()]
        self.base_field.widget.setEnabled(info.base != "none")
        self.t_field.widget.setEnabled("t" in info.parameters)
        self.lambda_field.widget.setEnabled("lambda" in info.parameters)
        self.normalize_field.widget.setEnabled("normalize" in info.parameters)
        self.seed_field.widget.setEnabled(info.random)
        table = self.models_field.table
        for column, key in ((1, "weight"), (2, "density")):
            table.setColumnHidden(column, key not in info.per_model)

    def _browse_base(self) -> None:
        path = base.choose_open_path(self, "Base Model", self.folder, MODEL_FILES)
        if path:
            self.base_field.set_text(path)

    # ------------------------------------------------------------------ the spec
    def spec(self) -> dict[str, Any]:
        """The `merge` edit of the form (raises ValueError naming a bad field)."""
        values = self.values()
        info = METHODS[self.method()]
        spec: dict[str, Any] = {"op": "merge", "method": self.method(),
                                "models": values["models"]}
        base_path = values.get("base", "").strip() if info.base != "none" else ""
        if base_path:
            if base_path != SELF and not Path(base_path).expanduser().exists():
                raise FieldError(self.base_field, f"Base: no file or folder {base_path}")
            spec["base"] = base_path if base_path == SELF else str(Path(base_path).expanduser())
        parameters: dict[str, Any] = {}
        for key in ("t", "lambda"):
            if key in values and key in info.parameters:
                parameters[key] = values[key]
        if values["normalize"] != NORMALIZE[0] and "normalize" in info.parameters:
            parameters["normalize"] = values["normalize"] == "true"
        if parameters:
            spec["parameters"] = parameters
        for key in ("include", "exclude"):
            if values.get(key):
                spec[key] = values[key]
        if values["dtype"] != DTYPES[0]:
            spec["dtype"] = values["dtype"]
        if info.random and "seed" in values:
            spec["seed"] = values["seed"]
        if self.skip.isChecked():
            spec["skip_mismatched"] = True
        return spec

    def check(self) -> None:
        spec = self.spec()
        parse_spec({key: value for key, value in spec.items() if key != "op"})

    def field_for(self, message: str) -> Field | None:
        """The field of an engine message: `merge.models[1].weight: ...` is the models'
        table, `merge.parameters.t: ...` the t field."""
        prefix, colon, _ = message.partition(": ")
        if colon and re.match(r"merge\.models\b", prefix):
            return self.models_field
        return super().field_for(message)


def _seed(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is not an integer") from None
    if not 0 <= value < 2**63:
        raise ValueError("must be in [0, 2**63)")
    return value
