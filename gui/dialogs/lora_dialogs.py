"""Adapters ▸ Merge LoRA… and Extract LoRA…: the adapter folder and scale; the base, the
fine-tune, the rank, the globs and the output folder.

Merge LoRA makes the `merge_lora` edit (docs/merge.md); a refusal of the engine (an
adapter for another model, a shape that does not fit) stays in the dialog under the
adapter field. Extract LoRA gives the arguments of `engine.lora.extract.extract`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget

from . import base
from .fields import (
    Field,
    FieldError,
    FormDialog,
    edit_field,
    integer,
    line_edit,
    names_list,
    number,
)

#: files offered as a base or a fine-tune
MODEL_FILES = "Checkpoints (*.safetensors *.json *.pt *.pth *.bin *.ckpt);;All files (*)"


class MergeLoraDialog(FormDialog):
    """Ask for a PEFT adapter folder and the scale of its update."""

    def __init__(self, folder: str = "", parent: QWidget | None = None) -> None:
        intro = ("Fold a PEFT LoRA adapter into the weights: W + scale x (lora_alpha / r) "
                 "x B @ A, for Linear, Conv1D and Embedding layers, as peft's "
                 "merge_and_unload. One step that Undo reverts.")
        super().__init__("Merge LoRA Adapter", parent, intro)
        self.folder = folder
        self.adapter_field = self.add_path_field(edit_field("merge_lora", "adapter", line_edit(
            "", "a folder with adapter_config.json")), self._browse)
        self.scale_field = self.add_field(edit_field("merge_lora", "scale", line_edit("1"),
                                                     number))
        self.finish_layout()
        self.resize(620, self.sizeHint().height())

    def _browse(self) -> None:
        path = base.choose_open_path(self, "Adapter Folder", self.folder, "", directory=True)
        if path:
            self.adapter_field.set_text(path)

    def check(self) -> None:
        folder = Path(self.adapter_field.text().strip()).expanduser()
        if not folder.is_dir():
            raise FieldError(self.adapter_field, f"{self.adapter_field.label}: no folder "
                             f"{folder}")
        if not (folder / "adapter_config.json").is_file():
            raise FieldError(self.adapter_field, f"{self.adapter_field.label}: {folder} has "
                             "no adapter_config.json (not a PEFT adapter folder)")
        self.values()

    def spec(self) -> dict[str, Any]:
        values = self.values()
        return {"op": "merge_lora", "adapter": str(Path(values["adapter"].strip()).expanduser()),
                "scale": values["scale"]}


class ExtractLoraDialog(FormDialog):
    """Ask for the base, the fine-tune, the rank, the weights and the output folder.

    Parameters
    ----------
    folder : where Browse… starts
    tuned : the fine-tune to start with (the open document's file), or None
    """

    def __init__(self, folder: str = "", tuned: str | None = None,
                 parent: QWidget | None = None) -> None:
        intro = ("Write a PEFT LoRA adapter folder from the difference of a fine-tune and "
                 "its base: a truncated SVD of each weight's difference, at rank r. "
                 "PeftModel.from_pretrained(base, folder) loads it; Merge LoRA… folds it "
                 "back. No document is changed.")
        super().__init__("Extract LoRA Adapter", parent, intro)
        self.folder = folder
        self.base_field = self.add_path_field(Field("base", "Base", line_edit(
            "", "the model before fine-tuning (file or folder)")),
            lambda: self._browse(self.base_field, "Base Model"))
        self.tuned_field = self.add_path_field(Field("tuned", "Fine-tune", line_edit(
            tuned or "", "the fine-tuned model (file or folder)")),
            lambda: self._browse(self.tuned_field, "Fine-tuned Model"))
        self.rank_field = self.add_field(Field("rank", "Rank", line_edit(
            "8", "", "r of every factor (lora_alpha is set to r: scaling 1)"), integer(1)))
        self.include_field = self.add_field(Field("include", "Include", line_edit(
            "", "every Linear, Conv1D and Embedding weight that differs"), names_list,
            optional=True))
        self.exclude_field = self.add_field(Field("exclude", "Exclude", line_edit(
            "", "none"), names_list, optional=True))
        self.output_field = self.add_path_field(Field("output", "Output folder", line_edit(
            "", "a new or empty folder")), self._browse_output)
        self.finish_layout()
        self.resize(640, self.sizeHint().height())

    def _browse(self, field: Field, title: str) -> None:
        path = base.choose_open_path(self, title, self.folder, MODEL_FILES)
        if path:
            field.set_text(path)

    def _browse_output(self) -> None:
        path = base.choose_save_path(self, "Adapter Folder", self.folder, "")
        if path:
            self.output_field.set_text(path)

    def check(self) -> None:
        for field in (self.base_field, self.tuned_field):
            path = Path(field.text().strip()).expanduser()
            if field.text().strip() and not path.exists():
                raise FieldError(field, f"{field.label}: no file or folder {path}")
        output = Path(self.output_field.text().strip()).expanduser()
        if self.output_field.text().strip():
            if not output.parent.is_dir():
                raise FieldError(self.output_field, f"{self.output_field.label}: folder "
                                 f"{output.parent} does not exist")
            if output.exists() and (not output.is_dir() or any(output.iterdir())):
                raise FieldError(self.output_field, f"{self.output_field.label}: {output} "
                                 "exists and is not an empty folder (choose a new one)")
        self.values()

    def options(self) -> dict[str, Any]:
        """The arguments of the extraction: base, tuned, rank, include, exclude, output."""
        values = self.values()
        options = {key: str(Path(values[key].strip()).expanduser())
                   for key in ("base", "tuned", "output")}
        options["rank"] = values["rank"]
        for key in ("include", "exclude"):
            if values.get(key):
                options[key] = values[key]
        return options
