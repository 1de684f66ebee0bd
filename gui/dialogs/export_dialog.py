"""Export for Deployment: format, output file, input shape, dynamic batch, opset.

The file's ending follows the format chosen (.pt2, .onnx, .pt for TorchScript) and the
format follows an ending typed (.pt2, .onnx), as in Save As. Shown again after a
failure with the failure's one line on top and another format chosen, so the user
can try the formats that may work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QWidget

from engine.export import FORMATS
from engine.export.options import DEPLOY_EXTRA, format_of_name, missing_onnx_packages, suffix_for

from . import base
from .fields import Field, FormDialog, combo, error_color, int_list, integer, line_edit

LABELS = {"pt2": "ExportedProgram (.pt2): ExecuTorch, AOTInductor, Model Explorer",
          "onnx": "ONNX (.onnx): onnxruntime, TensorRT, Netron",
          "torchscript": "TorchScript (.pt): libtorch C++ and mobile servers"}


#: endings replaced by the format's: the export formats' and the checkpoints' a
#: document's name starts with
_ENDINGS = (".pt2", ".onnx", ".pt", ".ts", ".pth", ".safetensors", ".bin", ".ckpt")


class ExportDialog(FormDialog):
    """Choose the options of `engine.export.export_model`.

    Parameters
    ----------
    path : the file name to start with (its ending is set to the format's)
    fmt : the format to start with
    problem : a previous attempt's failure, shown above the form
    """

    def __init__(self, path: str, fmt: str = "pt2", problem: str = "",
                 parent: QWidget | None = None) -> None:
        intro = ("Export the model in eval mode; the written file is loaded back with its "
                 "own runtime and compared with the model before it is reported written.")
        super().__init__("Export for Deployment", parent, intro)
        if problem:
            failed = QLabel(f"{problem}\nThe other formats may work: choose one below.", self)
            failed.setWordWrap(True)
            failed.setStyleSheet(f"color: {error_color(self.palette())};")
            self.layout_.insertWidget(1, failed)
            self.failure_label = failed
        self._syncing = False
        self.format_field = self.add_field(Field("format", "Format", combo(list(FORMATS), fmt)))
        self.format_field.widget.setToolTip("\n".join(LABELS.values()))
        for position, name in enumerate(FORMATS):
            self.format_field.widget.setItemData(position, LABELS[name],
                                                 Qt.ItemDataRole.ToolTipRole)
        self.onnx_note = QLabel(self)
        self.onnx_note.setWordWrap(True)
        missing = missing_onnx_packages()
        if missing:
            self.onnx_note.setText(f"ONNX needs {', '.join(missing)}: pip install "
                                   f"'weightsmith[{DEPLOY_EXTRA}]'")
        self.form.addRow("", self.onnx_note)
        self.onnx_note.setVisible(bool(missing) and fmt == "onnx")
        self.path_field = self.add_path_field(
            Field("path", "File", line_edit(_with_suffix(path, fmt))), self._browse)
        self.add_field(Field("input_shape", "Input shape", line_edit(
            "", "proposed from the model's first layer", "one sample's shape without the "
            "batch, e.g. 3, 224, 224 (images) or 128 (tokens)"), _shape, optional=True))
        self.add_field(Field("batch_size", "Batch size", line_edit("1"), integer(1)))
        self.dynamic = QCheckBox("Dynamic batch (verified at batch 1 and 3)", self)
        self.form.addRow("", self.dynamic)
        self.opset_field = self.add_field(Field(
            "opset", "ONNX opset", line_edit("", "the exporter's default", "18 or newer"),
            integer(18), optional=True))
        self.finish_layout()
        self.format_field.widget.currentTextChanged.connect(self._on_format)
        self.path_field.widget.textChanged.connect(self._on_path_edited)
        self._on_format(self.format_field.text())
        self.resize(600, self.sizeHint().height())

    def _browse(self) -> None:
        fmt = self.format_field.text()
        path = base.choose_save_path(self, "Export for Deployment", str(Path(self.path()).parent),
                                     f"{fmt} (*{suffix_for(fmt)});;All files (*)")
        if path:
            self.path_field.set_text(path)

    def _on_format(self, fmt: str) -> None:
        self.opset_field.widget.setEnabled(fmt == "onnx")
        self.onnx_note.setVisible(bool(missing_onnx_packages()) and fmt == "onnx")
        if self._syncing or not self.path_field.text().strip():
            return
        self._syncing = True
        try:
            self.path_field.set_text(_with_suffix(self.path(), fmt))
        finally:
            self._syncing = False

    def _on_path_edited(self, text: str) -> None:
        """The format follows an ending that names one."""
        named = format_of_name(text.strip())
        if self._syncing or named is None or named == self.format_field.text():
            return
        self._syncing = True
        try:
            self.format_field.set_text(named)
        finally:
            self._syncing = False
        self._on_format(named)

    def path(self) -> str:
        return str(Path(self.path_field.text().strip()).expanduser())

    def check(self) -> None:
        values = self.values()
        if not Path(self.path()).parent.is_dir():
            raise ValueError(f"File: folder {Path(self.path()).parent} does not exist")
        if values["format"] == "onnx" and missing_onnx_packages():
            raise ValueError(f"Format: ONNX needs {', '.join(missing_onnx_packages())} "
                             f"(pip install 'weightsmith[{DEPLOY_EXTRA}]'); choose pt2 or "
                             "torchscript")

    def accept(self) -> None:
        """Accept valid input; replacing an existing file is asked first."""
        self.clear_problems()
        try:
            self.check()
        except ValueError as error:
            self.show_problem(str(error))
            return
        target = Path(self.path())
        if target.exists() and not base.ask(self, "Export for Deployment",
                                            f"{target.name} exists. Replace it?", "Replace",
                                            "Cancel"):
            return
        super().accept()

    def format(self) -> str:
        return self.format_field.text()

    def options(self) -> dict[str, Any]:
        """Keyword arguments of `export_model` besides the path and the format."""
        values = self.values()
        options: dict[str, Any] = {"batch_size": values["batch_size"],
                                   "dynamic_batch": self.dynamic.isChecked()}
        if "input_shape" in values:
            options["input_shape"] = values["input_shape"]
        if "opset" in values and self.format() == "onnx":
            options["opset"] = values["opset"]
        return options


def _shape(text: str) -> list[int]:
    shape = int_list(text.replace("x", ","))
    if not shape or any(size <= 0 for size in shape):
        raise ValueError(f"'{text}' is not a shape of positive sizes (e.g. 3, 224, 224)")
    return shape


def _with_suffix(path: str, fmt: str) -> str:
    """`path` with the format's ending (an ending of another format replaced)."""
    current = Path(path)
    if current.suffix.lower() in _ENDINGS:
        current = current.with_suffix("")
    return str(current) + suffix_for(fmt)
