"""The Initialize dialog: fields built from the chosen initializer's signature.

Choosing `kaiming_normal` shows a, mode and nonlinearity; `normal` shows mean and
std; `constant` asks for val. The target is the selection (one tensor, or every
parameter below the selected modules), or every module of a type; an optional
name filter keeps only tensors called e.g. `weight`. A seed makes the result
reproducible; without one the engine draws and records one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QButtonGroup, QFormLayout, QGroupBox, QRadioButton, QWidget

from engine.edits.init import METHODS, initializer_parameters, is_random

from .fields import Field, FormDialog, combo, integer, line_edit, names_list, signature_fields

if TYPE_CHECKING:
    from engine.session import Session


def module_types(session: Session) -> list[str]:
    """Class names of the modules that own parameters, sorted."""
    if session.model is None:
        return []
    return sorted({type(module).__name__ for module in session.model.modules()
                   if any(t is not None for t in module._parameters.values())})


class InitDialog(FormDialog):
    """Build an `init` edit.

    Parameters
    ----------
    session : the document (for module types)
    targets : the selected dotted paths (tensors or modules); empty means the whole model
    """

    def __init__(self, session: Session, targets: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__("Initialize", parent)
        self.session = session
        self.targets = list(targets) or [""]
        target_box = QGroupBox("Apply to", self)
        target_form = QFormLayout(target_box)
        self.selection_radio = QRadioButton(self._selection_text(), target_box)
        self.types_radio = QRadioButton("Every module of type", target_box)
        self.target_group = QButtonGroup(self)
        self.target_group.addButton(self.selection_radio)
        self.target_group.addButton(self.types_radio)
        self.selection_radio.setChecked(True)
        target_form.addRow(self.selection_radio)
        types = module_types(session)
        self.types_combo = combo(types)
        self.types_radio.setEnabled(bool(types))
        self.types_combo.setEnabled(False)
        self.types_radio.toggled.connect(self.types_combo.setEnabled)
        target_form.addRow(self.types_radio, self.types_combo)
        self.param_field = Field("param", "Only tensors named",
                                 line_edit("", "all (or e.g. weight, bias)",
                                           "Keep only tensors whose last name part is one of "
                                           "these"), names_list, optional=True)
        target_form.addRow(f"{self.param_field.label}:", self.param_field.widget)
        self.layout_.addWidget(target_box)

        self.method_field = Field("method", "Method", combo(list(METHODS), "kaiming_normal"))
        self.form.addRow("Method:", self.method_field.widget)
        self.args_box = QGroupBox("Arguments", self)
        self.args_form = QFormLayout(self.args_box)
        self.layout_.addWidget(self.args_box)
        self.arg_fields: list[Field] = []
        seed_box = QGroupBox("Randomness", self)
        seed_form = QFormLayout(seed_box)
        self.seed_field = Field("seed", "Seed",
                                line_edit("", "drawn and recorded when empty",
                                          "The same seed gives the same values"),
                                integer(0), optional=True)
        seed_form.addRow("Seed:", self.seed_field.widget)
        self.fields["seed"] = self.seed_field
        self.layout_.addWidget(seed_box)
        self.seed_box = seed_box
        self.method_field.widget.currentTextChanged.connect(self._on_method_changed)
        self._on_method_changed(self.method_field.text())
        self.finish_layout()
        self.resize(420, self.sizeHint().height())

    def _selection_text(self) -> str:
        if self.targets == [""]:
            return "The whole model"
        shown = ", ".join(self.targets[:3]) + (f" and {len(self.targets) - 3} more"
                                               if len(self.targets) > 3 else "")
        return f"Selection: {shown}"

    def _on_method_changed(self, method: str) -> None:
        while self.args_form.rowCount():
            self.args_form.removeRow(0)
        self.arg_fields = signature_fields(initializer_parameters(method)) if method in METHODS \
            else []
        for field in self.arg_fields:
            self.args_form.addRow(f"{field.label}:", field.widget)
        self.args_box.setVisible(bool(self.arg_fields))
        self.seed_box.setEnabled(method in METHODS and is_random(method))

    # ------------------------------------------------------------------ fields for tests
    def set_method(self, method: str) -> None:
        self.method_field.set_text(method)

    def set_argument(self, name: str, text: str) -> None:
        next(field for field in self.arg_fields if field.name == name).set_text(text)

    def set_types(self, type_name: str) -> None:
        self.types_radio.setChecked(True)
        self.types_combo.setCurrentText(type_name)

    # ------------------------------------------------------------------ result
    def check(self) -> None:
        self.spec()

    def spec(self) -> dict[str, Any]:
        """The `init` edit; raises ValueError naming a bad field."""
        method = self.method_field.value()
        spec: dict[str, Any] = {"op": "init", "method": method}
        if self.types_radio.isChecked():
            type_name = self.types_combo.currentText()
            if not type_name:
                raise ValueError("Type: choose a module type")
            spec["types"] = [type_name]
        else:
            spec["targets"] = self.targets
        if self.param_field.is_given():
            params = self.param_field.value()
            if params:
                spec["param"] = params
        args = {field.name: field.value() for field in self.arg_fields if field.is_given()}
        if args:
            spec["args"] = args
        if self.seed_box.isEnabled() and self.seed_field.is_given():
            spec["seed"] = self.seed_field.value()
        return spec
