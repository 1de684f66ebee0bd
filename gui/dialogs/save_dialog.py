"""Save As: where, in which format, and whether to shard.

The format follows the name typed (`x.safetensors` writes safetensors whatever the box
said before), and choosing a format renames the file to match, so the two never
disagree; the engine refuses a mismatch anyway (`engine.io.saving.target_kind`). The
name starts as `<stem>_edited.<ext>` beside the opened file, never the opened file
itself, and replacing a file that exists is asked first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QWidget

from engine.errors import FileError
from engine.io import saving
from engine.io.file_ties import tie_choices

from . import base
from .fields import Field, FormDialog, combo, line_edit

if TYPE_CHECKING:
    from engine.session import Session

FORMATS = {"safetensors": ".safetensors", "pt": ".pt", "folder": ""}
#: endings kept when a name is suggested (the longest first)
_KNOWN_ENDINGS = (".safetensors.index.json", ".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_EDITED = re.compile(r"_edited\d*$")


def suggested_path(current: str | None, folder: str) -> Path:
    """Where Save As starts: `<stem>_edited<ext>` beside the opened file (a folder gets
    `<name>_edited`), numbered when that exists too; `edited.safetensors` in `folder`
    for a document without a file."""
    if not current:
        return Path(folder or ".") / "edited.safetensors"
    path = Path(current)
    lower = path.name.lower()
    ending = "" if path.is_dir() else next(
        (end for end in _KNOWN_ENDINGS if lower.endswith(end)), ".safetensors")
    stem = path.name[: len(path.name) - len(ending)] if lower.endswith(ending) and ending \
        else path.name if path.is_dir() else path.name.split(".")[0]
    stem = _EDITED.sub("", stem) or stem
    for number in range(1, 1000):
        suffix = "_edited" if number == 1 else f"_edited{number}"
        candidate = path.with_name(f"{stem}{suffix}{ending}")
        if not candidate.exists():
            return candidate
    return path.with_name(f"{stem}_edited{ending}")


class SaveDialog(FormDialog):
    """Choose the target and the options of `Session.save`."""

    def __init__(self, session: Session, folder: str, current: str | None,
                 parent: QWidget | None = None) -> None:
        super().__init__("Save As", parent)
        self.session = session
        self.folder = folder
        self.current = current
        start = suggested_path(current, folder)
        self._syncing = False
        self.path_field = self.add_path_field(Field("path", "File", line_edit(str(start))),
                                              self._browse)
        self.format_field = Field("format", "Format", combo(list(FORMATS), "safetensors"))
        self.add_field(self.format_field)
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
        self.ties = QComboBox(self)
        self.ties_note = QLabel(self)
        self.ties_note.setWordWrap(True)
        self._tie_choices: dict[bool, list[dict[str, Any]]] = {}
        self.ties.currentIndexChanged.connect(self._on_ties)
        if session.document.tie_groups():
            self.form.addRow("Tied tensors:", self.ties)
            self.form.addRow("", self.ties_note)
        else:
            self.ties.hide()
            self.ties_note.hide()
        self.finish_layout()
        self.format_field.widget.currentTextChanged.connect(self._on_format)
        self.path_field.widget.textChanged.connect(self._on_path_edited)
        self._on_path_edited(str(start))
        self._on_format(self.format_field.text())
        self.resize(560, self.sizeHint().height())

    def _browse(self) -> None:
        path = base.choose_save_path(self, "Save As", str(Path(self.path()).parent),
                                     "Safetensors (*.safetensors);;PyTorch (*.pt *.pth);;"
                                     "All files (*)")
        if path:
            self.path_field.set_text(path)

    def _on_path_edited(self, text: str) -> None:
        """The format follows the name typed, when the name says one."""
        if self._syncing or not text.strip():
            return
        named = saving.format_of_name(Path(text.strip()).expanduser())
        if named in FORMATS and named != self.format_field.text():
            self._syncing = True
            try:
                self.format_field.set_text(named)
            finally:
                self._syncing = False
            self._on_format(named)

    def _on_format(self, fmt: str) -> None:
        pt = fmt == "pt"
        self.shard.setEnabled(not pt)
        self.shard_size.setEnabled(not pt)
        self.whole_model.setEnabled(pt and self.session.document.has_modules)
        self.extras.setEnabled(pt)
        self._fill_ties(fmt)
        if self._syncing:
            return
        path = Path(self.path())
        named = saving.format_of_name(path)
        if named == fmt or (named == "folder" and fmt != "folder" and not path.suffix
                            and not path.is_dir()):
            return
        self._syncing = True
        try:
            if fmt == "folder":
                self.path_field.set_text(str(_without_ending(path)))
            elif named is not None:
                self.path_field.set_text(str(_without_ending(path)) + FORMATS[fmt])
        finally:
            self._syncing = False

    def _fill_ties(self, fmt: str) -> None:
        """Offer the ways ties can be stored, each with its cost and the loader it is for."""
        if self.ties.isHidden():
            return
        if fmt == "pt":
            self.ties.clear()
            self.ties.addItem("Every name, one storage (torch.save)", None)
            self.ties.setEnabled(False)
            self.ties_note.setText("torch.load gives every name over one storage.")
            return
        folder = fmt == "folder"
        if folder not in self._tie_choices:
            self._tie_choices[folder] = tie_choices(self.session.document, folder)
        self.ties.setEnabled(True)
        self.ties.clear()
        for choice in self._tie_choices[folder]:
            self.ties.addItem(_tie_label(choice), choice["mode"])
            if choice["default"]:
                self.ties.setCurrentIndex(self.ties.count() - 1)
        self._on_ties()

    def _on_ties(self, *args: object) -> None:
        mode = self.ties.currentData()
        choice = next((c for folder in self._tie_choices.values() for c in folder
                       if c["mode"] == mode), None)
        self.ties_note.setText(f"{choice['loads_with'][0].upper()}{choice['loads_with'][1:]}."
                               if choice else "")

    def path(self) -> str:
        return str(Path(self.path_field.text().strip()).expanduser())

    def check(self) -> None:
        if not self.path_field.text().strip():
            raise ValueError("File: required")
        if not Path(self.path()).parent.is_dir():
            raise ValueError(f"File: folder {Path(self.path()).parent} does not exist")
        try:
            saving.target_kind(self.path(), self.format_field.text())
        except FileError as error:
            raise ValueError(f"File: {error.problem}") from None
        if self.shard.isChecked() and self.shard.isEnabled() and not self.shard_size.text().strip():
            raise ValueError("Sharding: give a size such as 2GB")

    def accept(self) -> None:
        """Accept valid input; replacing an existing file or folder is asked first."""
        try:
            self.check()
        except ValueError as error:
            self.problem.setText(str(error))
            self.problem.show()
            return
        target = Path(self.path())
        if target.exists():
            what = "folder" if target.is_dir() else "file"
            detail = (" Its weights are replaced; its other files stay." if target.is_dir()
                      else "")
            if not base.ask(self, "Save As", f"The {what} {target.name} exists. Replace it?"
                            + detail, "Replace", "Cancel"):
                return
        super().accept()

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
        elif not self.ties.isHidden() and self.ties.currentData():
            options["ties"] = self.ties.currentData()
        return options


def _tie_label(choice: dict[str, Any]) -> str:
    if choice["mode"] == "every_name":
        return f"Under every name (+{_size(choice['extra_bytes'])})"
    if choice["mode"] == "once":
        return "Once, the other names in metadata (+0 B)"
    left = ", ".join(choice["left_out"]) or "nothing"
    return f"As transformers saves them (leaves out {left}; +{_size(choice['extra_bytes'])})"


def _size(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} B"


def _without_ending(path: Path) -> Path:
    lower = path.name.lower()
    for ending in _KNOWN_ENDINGS:
        if lower.endswith(ending):
            return path.with_name(path.name[: -len(ending)])
    return path.with_suffix("") if path.suffix else path
