"""The Replace Module dialog: a layer type and its arguments, from the class's signature.

The size argument the old module fixes (`in_features` of a Linear, `in_channels`
of a Conv2d) may be left empty: the engine infers it from the module replaced.
For a Sequential, or any spec the form cannot express, the JSON box takes a
whole module spec such as
`{"type": "Sequential", "layers": [{"type": "Linear", "out_features": 64}, {"type": "ReLU"}]}`.
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QFormLayout, QGroupBox, QPlainTextEdit, QWidget

from engine.io.json_files import JSONProblem, parse_json
from engine.module_spec import LAYERS

from .fields import Field, FormDialog, combo, edit_field, integer, line_edit, signature_fields

if TYPE_CHECKING:
    from engine.session import Session

JSON_TYPE = "JSON spec…"


def layer_parameters(type_name: str) -> dict[str, inspect.Parameter]:
    """Constructor arguments of a layer type, without self, device and dtype."""
    cls = LAYERS[type_name][0]
    parameters = inspect.signature(cls.__init__).parameters
    return {name: parameter for name, parameter in parameters.items()
            if name not in ("self", "device", "dtype")
            and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)}


class ReplaceDialog(FormDialog):
    """Build a `replace` edit for the module at `target`."""

    def __init__(self, session: Session, target: str, parent: QWidget | None = None) -> None:
        super().__init__("Replace Module", parent)
        _, old = session.document.module(target)
        self.target = target
        self.intro_text = f"Replace {target} ({type(old).__name__}) with:"
        self.form.addRow(self.intro_text, QWidget(self))
        types = [*LAYERS, JSON_TYPE]
        default = type(old).__name__ if type(old).__name__ in LAYERS else "Linear"
        self.type_field = Field("type", "Type", combo(types, default))
        self.form.addRow("Type:", self.type_field.widget)
        self.args_box = QGroupBox("Arguments (empty: default, or inferred from the old module)",
                                  self)
        self.args_form = QFormLayout(self.args_box)
        self.layout_.addWidget(self.args_box)
        self.json_edit = QPlainTextEdit(self)
        self.json_edit.setPlaceholderText('{"type": "Sequential", "layers": [{"type": "Linear", '
                                          '"out_features": 64}, {"type": "ReLU"}]}')
        self.layout_.addWidget(self.json_edit)
        self.seed_field = edit_field("replace", "seed",
                                     line_edit("", "drawn and recorded when empty"),
                                     integer(0), optional=True)
        seed_form = QFormLayout()
        seed_form.addRow("Seed:", self.seed_field.widget)
        self.fields["seed"] = self.seed_field
        self.layout_.addLayout(seed_form)
        self.arg_fields: list[Field] = []
        self._old = old
        self.type_field.widget.currentTextChanged.connect(self._on_type_changed)
        self._on_type_changed(self.type_field.text())
        self.finish_layout()
        self.resize(460, self.sizeHint().height())

    def _on_type_changed(self, type_name: str) -> None:
        while self.args_form.rowCount():
            self.args_form.removeRow(0)
        is_json = type_name == JSON_TYPE
        self.json_edit.setVisible(is_json)
        self.args_box.setVisible(not is_json)
        self.arg_fields = [] if is_json else signature_fields(layer_parameters(type_name))
        same_type = type(self._old).__name__ == type_name
        for field in self.arg_fields:
            if field.name == LAYERS[type_name][1]:
                field.optional = True  # inferred from the module replaced
                field.set_text("")
                assert hasattr(field.widget, "setPlaceholderText")
                field.widget.setPlaceholderText("inferred")
            elif same_type and hasattr(self._old, field.name):
                current = getattr(self._old, field.name)
                if isinstance(current, bool | int | float | str):
                    field.set_text(json.dumps(current) if not isinstance(current, str)
                                   else current)
            self.args_form.addRow(f"{field.label}:", field.widget)

    def set_type(self, type_name: str) -> None:
        self.type_field.set_text(type_name)

    def set_argument(self, name: str, text: str) -> None:
        next(field for field in self.arg_fields if field.name == name).set_text(text)

    def set_json(self, text: str) -> None:
        self.type_field.set_text(JSON_TYPE)
        self.json_edit.setPlainText(text)

    def check(self) -> None:
        self.spec()

    def spec(self) -> dict[str, Any]:
        """The `replace` edit; raises ValueError naming a bad field."""
        type_name = self.type_field.value()
        if type_name == JSON_TYPE:
            try:
                module = parse_json(self.json_edit.toPlainText())
            except JSONProblem as error:
                raise ValueError(f"JSON spec: not valid JSON ({error})") from None
            if not isinstance(module, dict):
                raise ValueError("JSON spec: expected an object with a 'type'")
        else:
            module = {"type": type_name}
            for field in self.arg_fields:
                if field.is_given():
                    module[field.name] = field.value()
        spec: dict[str, Any] = {"op": "replace", "target": self.target, "module": module}
        if self.seed_field.is_given():
            spec["seed"] = self.seed_field.value()
        return spec
