"""Dialogs for the smaller edits: set, scale/add, tie, replace head, tensor operations.

Each dialog only builds the JSON-ready edit; the caller applies it through
`Session.apply`, where the engine validates it against the document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QListWidget,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from engine.arch import parse_arch_args
from engine.document import dtype_name

from .fields import (
    FormDialog,
    combo,
    edit_field,
    int_list,
    integer,
    line_edit,
    number,
    parse_literal,
)

if TYPE_CHECKING:
    from engine.session import Session

_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8",
           "uint8", "bool")


class SetDialog(FormDialog):
    """Build `set` edits for one or more tensors: a value, an expression or a copy."""

    def __init__(self, session: Session, names: list[str], parent: QWidget | None = None) -> None:
        super().__init__("Set Values", parent,
                         intro="Set " + (names[0] if len(names) == 1 else
                                         f"{len(names)} tensors") + " to:")
        self.session = session
        self.names = names
        box = QGroupBox(self)
        form = QFormLayout(box)
        self.value_radio = QRadioButton("A value", box)
        self.expr_radio = QRadioButton("An expression of x", box)
        self.from_radio = QRadioButton("A copy of", box)
        group = QButtonGroup(self)
        for radio in (self.value_radio, self.expr_radio, self.from_radio):
            group.addButton(radio)
        self.value_radio.setChecked(True)
        self.value_field = edit_field("set", "value", line_edit("0", "a number or a nested list"),
                                 parse_literal)
        self.expr_field = edit_field("set", "expr", line_edit(
            "", "e.g. x * 0.5, clamp(x, -1, 1), randn_like(x) * 0.02",
            "x is the tensor (or the region); arithmetic, comparisons and common torch "
            "functions are allowed"))
        shape, dtype = session.document.tensor_meta(names[0])
        same = [other for other in session.document.tensor_names()
                if other not in names and session.document.tensor_meta(other) == (shape, dtype)]
        self.from_field = edit_field("set", "from", combo(same, editable=True))
        form.addRow(self.value_radio, self.value_field.widget)
        form.addRow(self.expr_radio, self.expr_field.widget)
        form.addRow(self.from_radio, self.from_field.widget)
        # Typing in a choice's field chooses it.
        self.value_field.widget.textEdited.connect(lambda _: self.value_radio.setChecked(True))
        self.expr_field.widget.textEdited.connect(lambda _: self.expr_radio.setChecked(True))
        self.from_field.widget.activated.connect(lambda _: self.from_radio.setChecked(True))
        # The choice first, then where and how (the form of region and seed below it).
        self.layout_.insertWidget(self.layout_.indexOf(self.form), box)
        self.index_field = edit_field("set", "index", line_edit(
            "", "whole tensor (or e.g. 0, :3)", "NumPy-style index of the region to set"),
            optional=True)
        self.seed_field = edit_field("set", "seed", line_edit("", "for random expressions"),
                                integer(0), optional=True)
        self.add_field(self.index_field)
        self.add_field(self.seed_field)
        self.finish_layout()
        self.resize(max(self.sizeHint().width(), 560), self.sizeHint().height())

    def choose(self, source: str, text: str) -> None:
        """Pick 'value', 'expr' or 'from' and type `text` there."""
        radio = {"value": self.value_radio, "expr": self.expr_radio, "from": self.from_radio}
        radio[source].setChecked(True)
        {"value": self.value_field, "expr": self.expr_field,
         "from": self.from_field}[source].set_text(text)

    def check(self) -> None:
        self.specs()

    def specs(self) -> list[dict[str, Any]]:
        """One `set` edit per tensor."""
        common: dict[str, Any] = {}
        if self.value_radio.isChecked():
            value = self.value_field.value()
            if isinstance(value, str):
                raise ValueError(f"Value: '{value}' is not a number or a list of numbers")
            common["value"] = value
        elif self.expr_radio.isChecked():
            common["expr"] = self.expr_field.value()
        else:
            common["from"] = self.from_field.value()
        if self.index_field.is_given():
            common["index"] = self.index_field.value()
        if self.seed_field.is_given():
            common["seed"] = self.seed_field.value()
        return [{"op": "set", "target": name, **common} for name in self.names]


class ScalarDialog(FormDialog):
    """Build a `scale` or `add` edit over the selection."""

    def __init__(self, op: str, targets: list[str], parent: QWidget | None = None) -> None:
        title = "Scale" if op == "scale" else "Add"
        super().__init__(title, parent, intro=("Multiply" if op == "scale" else "Add to")
                         + f" {len(targets)} selected item(s) " + ("by:" if op == "scale"
                                                                    else "the value:"))
        self.op = op
        self.targets = targets
        self.add_field(edit_field(op, "value", line_edit("1.0" if op == "scale" else "0.0"),
                             number))
        self.finish_layout()

    def spec(self) -> dict[str, Any]:
        return {"op": self.op, "targets": self.targets, "value": self.values()["value"]}


class ChooseNameDialog(FormDialog):
    """Pick one name from a searchable list (the source of a tie)."""

    def __init__(self, title: str, intro: str, names: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(title, parent, intro=intro)
        self.names = names
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.addItems(names)
        self.search.textChanged.connect(self._filter)
        self.list.itemDoubleClicked.connect(lambda item: self.accept())
        layout = QVBoxLayout()
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.layout_.addLayout(layout)
        if names:
            self.list.setCurrentRow(0)
        self.finish_layout()
        self.resize(460, 420)

    def _filter(self, text: str) -> None:
        lowered = text.lower()
        first = None
        for row in range(self.list.count()):
            item = self.list.item(row)
            hidden = lowered not in item.text().lower()
            item.setHidden(hidden)
            if not hidden and first is None:
                first = item
        if first is not None:
            self.list.setCurrentItem(first)

    def choose(self, name: str) -> None:
        matches = self.list.findItems(name, Qt.MatchFlag.MatchExactly)
        if not matches:
            raise ValueError(f"'{name}' is not in the list")
        self.list.setCurrentItem(matches[0])

    def check(self) -> None:
        self.chosen()

    def chosen(self) -> str:
        item = self.list.currentItem()
        if item is None or item.isHidden():
            raise ValueError("Choose a name from the list")
        return item.text()




class ReplaceHeadDialog(FormDialog):
    """Build a `replace_head` edit: classes, optional hidden layers and dropout."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Replace Head", parent,
                         intro="Replace the classifier with a new one (sizes are inferred).")
        from engine.edits import find_head
        from engine.errors import EditError

        try:
            head = find_head(session.document.model)
        except EditError:
            head = ""
        op = "replace_head"
        self.add_field(edit_field(op, "num_classes", line_edit("10"), integer(1)))
        self.add_field(edit_field(op, "target", line_edit(head, "the classifier's path"),
                                  optional=True))
        self.add_field(edit_field(op, "hidden", line_edit("", "none (or e.g. 256, 128)"),
                                  int_list, optional=True))
        self.add_field(edit_field(op, "dropout", line_edit("", "none (or e.g. 0.2)"), number,
                                  optional=True))
        self.add_field(edit_field(op, "seed", line_edit("", "drawn and recorded when empty"),
                                  integer(0), optional=True))
        self.finish_layout()

    def spec(self) -> dict[str, Any]:
        values = self.values()
        spec: dict[str, Any] = {"op": "replace_head", **values}
        if not spec.get("hidden"):
            spec.pop("hidden", None)
        return spec


class TensorOpDialog(FormDialog):
    """Build a tensor operation for one tensor: rename, copy or resize (checkpoint ops), or
    a cast of every selected tensor."""

    def __init__(self, op: str, names: list[str], session: Session,
                 parent: QWidget | None = None) -> None:
        titles = {"rename": "Rename Tensor", "copy": "Copy Tensor", "cast": "Cast Tensors",
                  "resize": "Resize Tensor"}
        name = names[0]
        shown = name if len(names) == 1 else f"{len(names)} tensors"
        super().__init__(titles.get(op, op), parent, intro=f"{op.capitalize()} {shown}")
        self.op = op
        self.names = names
        shape, dtype = session.document.tensor_meta(name)
        if op in ("rename", "copy"):
            suggestion = name if op == "rename" else f"{name}_copy"
            self.add_field(edit_field(op, "to", line_edit(suggestion)))
        elif op == "cast":
            current = dtype_name(dtype)
            self.add_field(edit_field(op, "dtype", combo(list(_DTYPES), current)))
        elif op == "resize":
            from engine.edits import INITIALIZERS

            self.add_field(edit_field(op, "shape", line_edit(
                ", ".join(str(size) for size in shape)), int_list))
            self.add_field(edit_field(op, "method", combo(list(INITIALIZERS), "zeros")))
            self.add_field(edit_field(op, "seed", line_edit("", "for random initializers"),
                                 integer(0), optional=True))
        self.finish_layout()

    def spec(self) -> dict[str, Any]:
        values = self.values()
        if self.op == "rename":
            return {"op": "rename", "target": self.names[0], "to": values["to"]}
        if self.op == "copy":
            return {"op": "copy", "source": self.names[0], "to": values["to"]}
        if self.op == "cast":
            return {"op": "cast", "targets": self.names, "dtype": values["dtype"]}
        spec = {"op": "resize", "target": self.names[0], "shape": values["shape"],
                "method": values["method"]}
        if "seed" in values:
            spec["seed"] = values["seed"]
        return spec


class AttachDialog(FormDialog):
    """Build an `attach` edit: the architecture a checkpoint's tensors belong to."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Attach Architecture", parent,
                         intro="Build a model and put the checkpoint's tensors into it "
                               "(the document switches to model mode; Undo switches back).")
        prefix = session.source.get("prefix") or ""
        # A Hugging Face folder's architecture is known from its config.json: offered.
        from engine.io.hf_folder import HF_SPEC, model_folder

        folder = session.source.get("folder")
        found = model_folder(folder) if folder else None
        self.add_field(edit_field("attach", "arch", line_edit(
            HF_SPEC if found is not None else "",
            "torchvision:resnet18, path/to/model.py:Net or hf",
            f"hf: the {found['architecture'] or found['model_type']} of {folder}/config.json"
            if found is not None else "")))
        self.add_field(edit_field("attach", "arch_args", line_edit(
            "", 'JSON, e.g. {"num_classes": 10}'), parse_arch_args, optional=True))
        self.add_field(edit_field("attach", "strip_prefix", line_edit(prefix, "e.g. module."),
                             optional=True))
        self.strict = QCheckBox("Every tensor must fit (strict)", self)
        self.form.addRow(self.strict)
        self.finish_layout()
        self.resize(480, self.sizeHint().height())

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"op": "attach", **self.values()}
        if self.strict.isChecked():
            spec["strict"] = True
        return spec

