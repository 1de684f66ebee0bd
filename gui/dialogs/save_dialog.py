"""Save As: where, in which format, and whether to shard."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QWidget

from . import base
from .fields import Field, FormDialog, combo, line_edit

if TYPE_CHECKING:
    from engine.session import Session

FORMATS = {"safetensors": ".safetensors", "pt": ".pt", "folder": ""}


class SaveDialog(FormDialog):
    """Choose the target and the options of `Session.save`."""

    def __init__(self, session: Session, folder: str, current: str | None,
                 parent: QWidget | None = None) -> None:
        super().__init__("Save As", parent)
        self.session = session
        self.folder = folder
        start = Path(current) if current else Path(folder) / "edited.safetensors"
        if current is None or start.suffix not in (".safetensors", ".pt", ".pth"):
            start = start.with_name(start.stem.split(".")[0] + "_edited.safetensors") \
                if current else start
        self.path_field = self.add_path_field(Field("path", "File", line_edit(str(start))),
                                              self._browse)
        self.format_field = Field("format", "Format", combo(list(FORMATS), "safetensors"))
        self.add_field(self.format_field)
        self.format_field.widget.currentTextChanged.connect(self._on_format)
        self.shard = QCheckBox("Split into shards of at most", self)
        self.shard_size = line_edit("5GB", tip="e.g. 500MB, 2GB")
        shard_row = QHBoxLayout()
        shard_row.addWidget(self.shard)
        shard_row.addWidget(self.shard_size, 1)
        self.form.addRow("Sharding:", shard_row)
        self.whole_model = QCheckBox("The whole module, not only its tensors (needs trust to "
                                     "open again)", self)
        self.whole_model.setEnabled(False)
        self.form.addRow(self.whole_model)
        self.extras = QCheckBox("Keep the checkpoint's other entries (epoch, optimizer, ...)",
                                self)
        self.extras.setChecked(True)
        self.form.addRow(self.extras)
        self.finish_layout()
        suffix = start.suffix
        self.format_field.set_text("pt" if suffix in (".pt", ".pth") else "safetensors")
        self.resize(560, self.sizeHint().height())

    def _browse(self) -> None:
        path = base.choose_save_path(self, "Save As", str(Path(self.path()).parent),
                                     "Safetensors (*.safetensors);;PyTorch (*.pt *.pth);;"
                                     "All files (*)")
        if path:
            self.path_field.set_text(path)
            if path.endswith((".pt", ".pth")):
                self.format_field.set_text("pt")
            elif path.endswith(".safetensors"):
                self.format_field.set_text("safetensors")

    def _on_format(self, fmt: str) -> None:
        pt = fmt == "pt"
        self.shard.setEnabled(not pt)
        self.shard_size.setEnabled(not pt)
        self.whole_model.setEnabled(pt and self.session.model is not None)
        self.extras.setEnabled(pt)
        path = Path(self.path())
        suffix = FORMATS[fmt]
        if fmt != "folder" and path.suffix in (".safetensors", ".pt", ".pth") \
                and path.suffix != suffix and not (pt and path.suffix == ".pth"):
            self.path_field.set_text(str(path.with_suffix(suffix)))
        elif fmt == "folder" and path.suffix:
            self.path_field.set_text(str(path.with_suffix("")))

    def path(self) -> str:
        return str(Path(self.path_field.text().strip()).expanduser())

    def check(self) -> None:
        if not self.path_field.text().strip():
            raise ValueError("File: required")
        if not Path(self.path()).parent.is_dir():
            raise ValueError(f"File: folder {Path(self.path()).parent} does not exist")
        if self.shard.isChecked() and self.shard.isEnabled() and not self.shard_size.text().strip():
            raise ValueError("Sharding: give a size such as 2GB")

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `Session.save`."""
        fmt = self.format_field.text()
        options: dict[str, Any] = {"format": fmt}
        if self.shard.isChecked() and self.shard.isEnabled():
            options["max_shard_size"] = self.shard_size.text().strip()
        if fmt == "pt":
            if self.whole_model.isChecked() and self.whole_model.isEnabled():
                options["whole_model"] = True
            if not self.extras.isChecked():
                options["include_extras"] = False
        return options
