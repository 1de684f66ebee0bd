"""The Initialize dialog: fields built from the chosen initializer's signature.

Choosing `kaiming_normal` shows a, mode and nonlinearity; `normal` shows mean and
std; `constant` asks for val. The target is the selection (one tensor, or every
parameter below the selected modules), or every module of a type; an optional
name filter keeps only tensors called e.g. `weight`. A seed makes the result
reproducible; without one the engine draws and records one.

"Per-type rules" edits the `rules` form instead (a table, see `rule_table`): what
`torch.manual_seed(seed); model.apply(weight_init)` does, applied to the selected
module (or the whole model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QGroupBox,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from engine.edits import METHODS, initializer_parameters, is_random
from engine.errors import WeightsmithError

from .fields import (
    Field,
    FormDialog,
    combo,
    edit_field,
    integer,
    line_edit,
    names_list,
    signature_fields,
)
from .rule_table import RuleTable

if TYPE_CHECKING:
    from engine.session import Session



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
        self.rules_radio = QRadioButton("Per-type rules, as model.apply(weight_init)", target_box)
        self.rules_radio.setToolTip("Several rules (one per type and parameter) drawing from "
                                    "one generator in model.apply order: the same values as "
                                    "torch.manual_seed(seed); model.apply(weight_init)")
        self.target_group = QButtonGroup(self)
        for radio in (self.selection_radio, self.types_radio, self.rules_radio):
            self.target_group.addButton(radio)
        self.selection_radio.setChecked(True)
        target_form.addRow(self.selection_radio)
        types = session.document.module_types()
        self.types_combo = combo(types)
        self.types_radio.setEnabled(bool(types))
        self.types_combo.setEnabled(False)
        self.types_radio.toggled.connect(self.types_combo.setEnabled)
        target_form.addRow(self.types_radio, self.types_combo)
        self.param_field = edit_field("init", "param",
                                 line_edit("", "all (or e.g. weight, bias)",
                                           "Keep only tensors whose last name part is one of "
                                           "these"), names_list, optional=True)
        target_form.addRow(f"{self.param_field.label}:", self.param_field.widget)
        target_form.addRow(self.rules_radio)
        self.rules_radio.setEnabled(session.document.has_modules)
        self.layout_.addWidget(target_box)

        self.rules_box = QGroupBox("Rules", self)
        rules_layout = QVBoxLayout(self.rules_box)
        self.rules_root = self._rules_root()
        intro = QLabel(f"Every module below {self.rules_root or 'the model'} gets, in "
                       "model.apply order (children first), every rule whose types it is an "
                       "instance of, in this order.", self.rules_box)
        intro.setWordWrap(True)
        rules_layout.addWidget(intro)
        self.rule_table = RuleTable(types, self.rules_box)
        rules_layout.addWidget(self.rule_table)
        self.layout_.addWidget(self.rules_box)
        self.rules_box.setVisible(False)
        self.rules_radio.toggled.connect(self._on_rules_toggled)

        self.method_field = edit_field("init", "method", combo(list(METHODS), "kaiming_normal"))
        self.form.addRow("Method:", self.method_field.widget)
        self.args_box = QGroupBox("Arguments", self)
        self.args_form = QFormLayout(self.args_box)
        self.layout_.addWidget(self.args_box)
        self.arg_fields: list[Field] = []
        seed_box = QGroupBox("Randomness", self)
        seed_form = QFormLayout(seed_box)
        self.seed_field = edit_field("init", "seed",
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

    def _rules_root(self) -> str:
        """The module the rules run under: the one selected module, else the whole model."""
        if len(self.targets) == 1 and self.targets[0]:
            try:
                return self.session.document.module(self.targets[0])[0]
            except WeightsmithError:
                return ""
        return ""

    def _on_rules_toggled(self, on: bool) -> None:
        self.rules_box.setVisible(on)
        self.method_field.widget.setEnabled(not on)
        self.param_field.widget.setEnabled(not on)
        if on:
            self.args_box.setVisible(False)
            self.seed_box.setEnabled(True)
        else:
            self._on_method_changed(self.method_field.text())
        self.resize(max(self.width(), 560 if on else 420), self.sizeHint().height())

    def _selection_text(self) -> str:
        if self.targets == [""]:
            return "The whole model"
        shown = ", ".join(self.targets[:3]) + (f" and {len(self.targets) - 3} more"
                                               if len(self.targets) > 3 else "")
        return f"Selection: {shown}"

    def _on_method_changed(self, method: str) -> None:
        if self.rules_radio.isChecked():
            return
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

    def use_rules(self, rules: list[dict[str, Any]] | None = None) -> None:
        """Switch to per-type rules (showing `rules`, if given)."""
        self.rules_radio.setChecked(True)
        if rules is not None:
            self.rule_table.set_rules(rules)

    def field_for(self, message: str) -> Field | None:
        # A rule's problem (`init.rules[2].method: ...`) belongs to the table, which says
        # it under the form; it is no problem of the single-method fields.
        if message.startswith("init.rules") or message.startswith("Rule"):
            return None
        return super().field_for(message)

    # ------------------------------------------------------------------ result
    def check(self) -> None:
        self.spec()

    def spec(self) -> dict[str, Any]:
        """The `init` edit; raises ValueError naming a bad field."""
        if self.rules_radio.isChecked():
            spec: dict[str, Any] = {"op": "init", "rules": self.rule_table.rules()}
            if self.rules_root:
                spec["target"] = self.rules_root
            if self.seed_field.is_given():
                spec["seed"] = self.seed_field.value()
            return spec
        method = self.method_field.value()
        spec = {"op": "init", "method": method}
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
