"""Form fields that read back typed values, and a dialog that validates before accepting.

A `Field` is a label, an input widget and a parser: `value()` returns the parsed
value or raises `FieldError` (a ValueError) with a message naming the field.
`FormDialog` refuses OK while any field is invalid, so bad input never turns into a
silent default. What accepting does (applying the edit) is the dialog's
`on_accept`: when it raises (the engine refused the edit), the dialog stays open,
with what the user typed, and the message appears right under the field at fault
(found from the message: `set.expr: ...` names `expr`), or under the form when the
message names no field.
"""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import WeightsmithError
from engine.io.json_files import JSONProblem, parse_json

#: choices offered for string arguments whose values are a known set
KNOWN_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("fan_in", "fan_out"),
    "nonlinearity": ("leaky_relu", "relu", "linear", "conv1d", "conv2d", "conv3d", "sigmoid",
                     "tanh", "selu"),
    "padding_mode": ("zeros", "reflect", "replicate", "circular"),
    "approximate": ("none", "tanh"),
}


def parse_literal(text: str) -> Any:
    """A number, true/false, a list or a string typed by a user ('3', '0.5', '[1, 2]')."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() in ("none", "null"):
        return None
    try:
        return parse_json(text)
    except JSONProblem:
        pass
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(value, tuple):
        return list(value)
    return value


class FieldError(ValueError):
    """The value of one field is wrong; `field` is the one at fault."""

    def __init__(self, field: Field, message: str) -> None:
        super().__init__(message)
        self.field = field


def error_color(palette: QPalette) -> str:
    """A red that reads on the palette's background (light or dark)."""
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    return "#ff7b6b" if dark else "#c0392b"


class Field:
    """One labelled input with a parser.

    Parameters
    ----------
    name : the key in the values dict
    label : the text shown beside the input
    widget : a QLineEdit, QComboBox or QCheckBox
    parse : turns the widget's text into a value, raising ValueError
    optional : an empty text means "not given" (the key is left out)
    """

    def __init__(self, name: str, label: str, widget: QWidget,
                 parse: Callable[[str], Any] | None = None, optional: bool = False) -> None:
        self.name = name
        self.label = label
        self.widget = widget
        self.parse = parse or (lambda text: text)
        self.optional = optional
        self.error_label: QLabel | None = None

    def text(self) -> str:
        if isinstance(self.widget, QComboBox):
            return self.widget.currentText()
        if isinstance(self.widget, QCheckBox):
            return "true" if self.widget.isChecked() else "false"
        assert isinstance(self.widget, QLineEdit)
        return self.widget.text()

    def set_text(self, text: str) -> None:
        """Put `text` in the widget (what a user would type or choose)."""
        if isinstance(self.widget, QComboBox):
            if self.widget.isEditable():
                self.widget.setEditText(text)
            else:
                position = self.widget.findText(text)
                if position < 0:
                    raise ValueError(f"{self.label}: '{text}' is not a choice")
                self.widget.setCurrentIndex(position)
        elif isinstance(self.widget, QCheckBox):
            self.widget.setChecked(text.lower() in ("true", "1", "yes"))
        else:
            assert isinstance(self.widget, QLineEdit)
            self.widget.setText(text)

    def is_given(self) -> bool:
        return not (self.optional and not self.text().strip())

    def value(self) -> Any:
        """The parsed value; raises ValueError naming the field."""
        if isinstance(self.widget, QCheckBox):
            return self.widget.isChecked()
        text = self.text()
        if not text.strip() and not self.optional:
            raise FieldError(self, f"{self.label}: required")
        try:
            return self.parse(text)
        except ValueError as error:
            raise FieldError(self, f"{self.label}: {error}") from None

    # ------------------------------------------------------------------ errors
    def show_error(self, message: str) -> bool:
        """Show `message` right under this field's input and mark the input.

        Returns False when the input is in no form layout (the caller shows the
        message elsewhere).
        """
        if self.error_label is None:
            label = QLabel()
            label.setWordWrap(True)
            label.setObjectName("fieldError")
            if not _insert_below(self.widget, label):
                label.deleteLater()
                return False
            self.error_label = label
        color = error_color(self.widget.palette())
        self.error_label.setStyleSheet(f"color: {color};")
        self.error_label.setText(message)
        self.error_label.show()
        if not isinstance(self.widget, QAbstractButton):
            self.widget.setStyleSheet(f"border: 1px solid {color};")
        self.widget.setFocus()
        if isinstance(self.widget, QLineEdit):
            self.widget.selectAll()
        return True

    def clear_error(self) -> None:
        """Hide the message of `show_error` and unmark the input."""
        if self.error_label is not None:
            self.error_label.hide()
            self.widget.setStyleSheet("")

    def error_text(self) -> str:
        """The message shown under the field ('' when none)."""
        label = self.error_label
        return label.text() if label is not None and not label.isHidden() else ""


def _contains(layout: QLayout, widget: QWidget) -> bool:
    for position in range(layout.count()):
        item = layout.itemAt(position)
        if item.widget() is widget or (item.layout() is not None
                                       and _contains(item.layout(), widget)):
            return True
    return False


def _insert_below(widget: QWidget, label: QLabel) -> bool:
    """Put `label` in a row of its own below `widget`'s row in the form layout holding it."""
    window = widget.window()
    forms = window.findChildren(QFormLayout)
    for form in forms:
        for row in range(form.rowCount()):
            for role in (QFormLayout.ItemRole.FieldRole, QFormLayout.ItemRole.SpanningRole,
                         QFormLayout.ItemRole.LabelRole):
                item = form.itemAt(row, role)
                if item is None:
                    continue
                if item.widget() is widget or (item.layout() is not None
                                               and _contains(item.layout(), widget)):
                    form.insertRow(row + 1, label)
                    return True
    return False


def number(text: str) -> float | int:
    """A finite int or float."""
    value = parse_literal(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{text}' is not a number")
    if isinstance(value, float) and value != value:  # NaN
        raise ValueError("must be a number, not nan")
    return value


def integer(minimum: int | None = None) -> Callable[[str], int]:
    """A parser of integers, at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"'{text}' is not an integer") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return parse


def int_list(text: str) -> list[int]:
    """'512, 256' -> [512, 256]; empty -> []."""
    parts = [part.strip() for part in text.replace("[", "").replace("]", "").split(",")]
    try:
        return [int(part) for part in parts if part]
    except ValueError:
        raise ValueError(f"'{text}' is not a list of integers (e.g. 512, 256)") from None


def names_list(text: str) -> list[str]:
    """'a, b*' -> ['a', 'b*']."""
    return [part.strip() for part in text.split(",") if part.strip()]


def line_edit(text: str = "", placeholder: str = "", tip: str = "") -> QLineEdit:
    widget = QLineEdit()
    widget.setText(text)
    widget.setPlaceholderText(placeholder)
    if tip:
        widget.setToolTip(tip)
    return widget


def combo(choices: list[str] | tuple[str, ...], current: str | None = None,
          editable: bool = False) -> QComboBox:
    widget = QComboBox()
    widget.addItems(list(choices))
    widget.setEditable(editable)
    if current is not None:
        position = widget.findText(current)
        if position >= 0:
            widget.setCurrentIndex(position)
        elif editable:
            widget.setEditText(current)
    return widget


def signature_fields(parameters: dict[str, inspect.Parameter], prefix: str = "") -> list[Field]:
    """Fields for the keyword arguments of a function (an initializer, a layer class).

    A parameter with a default is optional and shows the default; one without is
    required. Known string options become choice lists.
    """
    fields = []
    for name, parameter in parameters.items():
        default = parameter.default
        required = default is inspect.Parameter.empty
        if name in KNOWN_CHOICES and (required or isinstance(default, str)):
            widget: QWidget = combo(KNOWN_CHOICES[name], None if required else str(default))
            fields.append(Field(prefix + name, name, widget))
            continue
        shown = "" if required or default is None else json.dumps(default) \
            if isinstance(default, bool | int | float | list) else str(default)
        edit = line_edit(shown, "required" if required else "", _annotation_tip(parameter))
        fields.append(Field(prefix + name, name, edit, parse_literal, optional=not required))
    return fields


def _annotation_tip(parameter: inspect.Parameter) -> str:
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return ""
    return f"{parameter.name}: {getattr(annotation, '__name__', annotation)}"


def edit_field(op: str, name: str, widget: QWidget, parse: Callable[[str], Any] | None = None,
               optional: bool = False) -> Field:
    """A field for field `name` of the edit `op`: labelled and explained (tooltip) by the
    edit's own declaration, so a form says what docs/recipes.md says."""
    from engine.edits import EDIT_TYPES

    declared = EDIT_TYPES[op].field(name)
    if not widget.toolTip():
        widget.setToolTip(declared.doc[:1].upper() + declared.doc[1:] + ".")
    return Field(name, declared.title, widget, parse, optional)


class FormDialog(QDialog):
    """A dialog with a form of Fields that accepts only valid input.

    Subclasses put fields in `self.form` (through `add_field`) and may override
    `check()` to validate across fields (raise ValueError with the message).
    `on_accept`, when set, is called after `check()` when the user presses OK (it
    applies the edit); if it raises a ValueError or an engine error, the dialog
    stays open and shows the message beside the field at fault.
    """

    def __init__(self, title: str, parent: QWidget | None = None, intro: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.fields: dict[str, Field] = {}
        self.layout_ = QVBoxLayout(self)
        if intro:
            label = QLabel(intro, self)
            label.setWordWrap(True)
            self.layout_.addWidget(label)
        self.form = QFormLayout()
        self.layout_.addLayout(self.form)
        self.problem = QLabel(self)
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        #: what OK does once the fields are valid (e.g. apply the edit); may raise
        self.on_accept: Callable[[], Any] | None = None

    def finish_layout(self) -> None:
        """Add the problem line and the buttons below everything added so far."""
        self.layout_.addWidget(self.problem)
        self.layout_.addWidget(self.buttons)

    def add_field(self, field: Field, form: QFormLayout | None = None) -> Field:
        self.fields[field.name] = field
        (form or self.form).addRow(f"{field.label}:", field.widget)
        return field

    def add_path_field(self, field: Field, browse: Callable[[], None]) -> Field:
        """Add a file-name field with a Browse… button beside it."""
        button = QPushButton("Browse…", self)
        button.clicked.connect(browse)
        row = QHBoxLayout()
        row.addWidget(field.widget, 1)
        row.addWidget(button)
        self.fields[field.name] = field
        self.form.addRow(f"{field.label}:", row)
        return field

    def set_field(self, name: str, text: str) -> None:
        """Type `text` into field `name` (for keyboard-free use, e.g. tests)."""
        self.fields[name].set_text(text)

    def values(self) -> dict[str, Any]:
        """Every given field's parsed value; raises ValueError naming the first bad field."""
        return {name: field.value() for name, field in self.fields.items() if field.is_given()}

    def check(self) -> None:
        """Validate across fields; raise ValueError with a message. Default: parse all."""
        self.values()

    def accept(self) -> None:
        self.clear_problems()
        try:
            self.check()
            if self.on_accept is not None:
                self.on_accept()
        except FieldError as error:
            self.show_problem(str(error), error.field)
            return
        except (ValueError, WeightsmithError) as error:
            self.show_problem(str(error).splitlines()[0] if str(error) else
                              type(error).__name__)
            return
        super().accept()

    # ------------------------------------------------------------------ problems
    def all_fields(self) -> list[Field]:
        """Every Field of the dialog: those added, and those it holds as attributes or in
        lists (fields built from a signature, fields placed in boxes of their own)."""
        found: dict[int, Field] = {id(field): field for field in self.fields.values()}
        for value in vars(self).values():
            candidates = value if isinstance(value, list | tuple) else [value]
            for candidate in candidates:
                if isinstance(candidate, Field):
                    found.setdefault(id(candidate), candidate)
        return list(found.values())

    def field_for(self, message: str) -> Field | None:
        """The field a message is about: named by the engine's dotted prefix
        (`replace.module.kernel_size: ...`), quoted ('std'), or by its label ("Seed: ...")."""
        fields = self.all_fields()
        by_name = {field.name: field for field in fields}
        prefix, colon, _ = message.partition(": ")
        if colon:
            for part in reversed(prefix.split(".")[1:]):
                if part in by_name:
                    return by_name[part]
            for field in fields:
                if prefix == field.label:
                    return field
        for field in fields:
            if f"'{field.name}'" in message:
                return field
        return None

    def show_problem(self, message: str, field: Field | None = None) -> None:
        """Show `message` under the field at fault, or under the form if none is."""
        field = field or self.field_for(message)
        if field is not None and field.show_error(message):
            return
        self.problem.setStyleSheet(f"color: {error_color(self.palette())};")
        self.problem.setText(message)
        self.problem.show()

    def clear_problems(self) -> None:
        """Hide every message of `show_problem`."""
        self.problem.hide()
        for field in self.all_fields():
            field.clear_error()

    def problem_text(self) -> str:
        """The message shown now, beside a field or under the form ('' when none)."""
        for field in self.all_fields():
            if field.error_text():
                return field.error_text()
        return self.problem.text() if not self.problem.isHidden() else ""
