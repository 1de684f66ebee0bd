"""Edit ▸ Tensors ▸ Across Tensors: `concat`, `split`, `permute`, `transpose`, `reshape`,
`copy_from_file` (checkpoint mode), one form each.

The form's fields are the edit's declared fields (labels and tooltips from
`engine.schema`), filled in from the selection: the selected tensors to concatenate,
the selected tensor to split, permute, transpose or reshape with its dims and shape.
A refusal of the engine stays in the dialog, under the field it names.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QWidget

from . import base
from .fields import FormDialog, edit_field, int_list, integer, line_edit, names_list

#: the window title of each op (`gui.layout_actions.OPS`)
TITLES = {"concat": "Concatenate Tensors", "split": "Split Tensor", "permute": "Permute Dims",
          "transpose": "Transpose Tensor", "reshape": "Reshape Tensor",
          "copy_from_file": "Copy Tensor From File"}
#: list fields of names (typed as `a, b, c`) and of integers (`64, 64, 64`)
_NAME_LISTS = {("concat", "sources"), ("split", "to")}
_INT_LISTS = {("split", "sizes"), ("permute", "dims"), ("reshape", "shape")}
#: files offered by Copy From File's Browse…
_FILES = "Checkpoints (*.safetensors *.json *.pt *.pth *.bin *.ckpt);;All files (*)"


class LayoutDialog(FormDialog):
    """The form of one cross-tensor op; `spec()` is its edit.

    Parameters
    ----------
    op : one of `TITLES`
    names : the selected tensors (may be empty for copy_from_file)
    shapes : their shapes, by name
    folder : where Browse… starts
    """

    def __init__(self, op: str, names: list[str], shapes: dict[str, tuple[int, ...]],
                 folder: str = "", parent: QWidget | None = None) -> None:
        from engine.edits import EDIT_TYPES

        super().__init__(TITLES[op], parent, intro=_intro(op, names))
        self.op = op
        self.folder = folder
        self.flags: dict[str, QCheckBox] = {}
        first = names[0] if names else ""
        shape = shapes.get(first, ())
        prefill = {
            "sources": ", ".join(names), "source": first, "target": first,
            "dims": ", ".join(str(dim) for dim in reversed(range(len(shape)))),
            "shape": ", ".join(str(size) for size in shape),
            "sizes": ", ".join(str(shape[0] // 3) for _ in range(3))
            if shape and shape[0] % 3 == 0 else "",
            "to": "" if op != "concat" else _joined_name(names),
        }
        for declared in EDIT_TYPES[op].fields:
            name = declared.name
            if declared.kind == "bool":
                box = QCheckBox(declared.title, self)
                box.setToolTip(declared.doc[:1].upper() + declared.doc[1:] + ".")
                self.flags[name] = box
                self.form.addRow("", box)
                continue
            text = prefill.get(name, "")
            if declared.kind == "int" and declared.default is not None:
                text = str(declared.default)
            field = edit_field(op, name, line_edit(text), _parser(op, name, declared.kind),
                               optional=not declared.required)
            if op == "copy_from_file" and name == "path":
                self.path_field = self.add_path_field(field, self._browse)
            else:
                self.add_field(field)
        self.finish_layout()
        self.resize(560, self.sizeHint().height())

    def _browse(self) -> None:
        path = base.choose_open_path(self, TITLES[self.op], self.folder, _FILES)
        if path:
            self.path_field.set_text(path)

    def set_flag(self, name: str, checked: bool) -> None:
        self.flags[name].setChecked(checked)

    def spec(self) -> dict[str, Any]:
        """The edit the form describes (raises ValueError naming a bad field)."""
        spec: dict[str, Any] = {"op": self.op, **self.values()}
        for name, box in self.flags.items():
            if box.isChecked():
                spec[name] = True
        return spec


def _parser(op: str, name: str, kind: str) -> Any:
    if (op, name) in _NAME_LISTS:
        return names_list
    if (op, name) in _INT_LISTS:
        return int_list
    if kind == "int":
        return integer(-64)
    return lambda text: text.strip()


def _joined_name(names: list[str]) -> str:
    """A name for q, k, v joined: `...attn.qkv_proj.weight` from `...attn.q_proj.weight`."""
    if len(names) < 2:
        return ""
    parts = [name.split(".") for name in names]
    if all(len(part) == len(parts[0]) for part in parts):
        joined = []
        for pieces in zip(*parts, strict=True):
            if len(set(pieces)) == 1:
                joined.append(pieces[0])
            else:
                heads = "".join(piece.split("_")[0] for piece in pieces)
                tail = pieces[0].split("_", 1)[1] if "_" in pieces[0] else ""
                joined.append(f"{heads}_{tail}" if tail else heads)
        return ".".join(joined)
    return names[0] + "_joined"


def _intro(op: str, names: list[str]) -> str:
    shown = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
    return {
        "concat": f"Join {shown} into one new tensor along a dim (fuse q, k, v); the "
                  "new tensor stands where the first was. One step that Undo reverts.",
        "split": f"Split {shown} into new tensors of the given sizes along a dim.",
        "permute": f"Reorder the dims of {shown} (a permutation, as torch.permute); every "
                   "name tied to it follows.",
        "transpose": f"Swap two dims of {shown}; every name tied to it follows.",
        "reshape": f"Give {shown} a new shape with the same number of elements (one "
                   "size may be -1).",
        "copy_from_file": "Copy one tensor of another file into the checkpoint, by name.",
    }[op]
