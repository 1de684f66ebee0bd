"""Declared fields: each edit (and the training settings) says once what its fields are.

A `Field` has a name, a kind, a default, a label and a line of documentation. The one
declaration serves everywhere a field is met: `Edit.__init__` refuses unknown and
missing fields and checks each value's type with it, `TrainConfig` validates with it,
the GUI's edit dialogs take their labels and tooltips from it, and the field tables of
docs/recipes.md are generated from it (`field_table`; a test keeps the file in step).

Every problem is one `EditError` that names the field: `init.seed: expected an integer,
got text`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import EditError

#: kinds of value a field takes, and how the documentation names them
KINDS = {
    "text": "text",
    "names": "name or list of names",
    "bool": "true/false",
    "int": "integer",
    "number": "number",
    "seed": "integer seed",
    "object": "object",
    "list": "list",
    "choice": "one of",
    "any": "value",
}

SEED_LIMIT = 2**63


def type_name(value: Any) -> str:
    """How a message names the type of a JSON value: 'text', 'a number', 'null'..."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "text",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


@dataclass(frozen=True, eq=False)  # one declaration is one object (defaults may be dicts)
class Field:
    """One field of an edit or of the training settings.

    Attributes
    ----------
    name : the JSON key
    kind : one of `KINDS`
    doc : one line for the documentation and the GUI's tooltip
    default : the value when the field is absent (None: absent means "not given")
    required : whether the field must be given
    label : the GUI's label ("" for the name, capitalized)
    minimum : for "int" and "number": the smallest value allowed
    above_minimum : the value must be greater than `minimum`, not equal to it
    maximum : for "int" and "number": the largest value allowed (a count that costs
        memory or time, such as training steps)
    choices : for "choice": the values allowed
    nullable : null is accepted as "not given" (always for an optional field without a
        default)
    """

    name: str
    kind: str
    doc: str
    default: Any = None
    required: bool = False
    label: str = ""
    minimum: float | None = None
    above_minimum: bool = False
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: unknown kind {self.kind!r}")

    @property
    def title(self) -> str:
        """The label a form shows."""
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def kind_text(self) -> str:
        """The kind as the documentation names it ('one of sgd, adam, adamw')."""
        if self.kind == "choice":
            return "one of " + ", ".join(f"`{choice}`" for choice in self.choices)
        return KINDS[self.kind]

    def check(self, value: Any, prefix: str) -> Any:
        """Check `value` (given for this field); return it in its canonical form.

        Raises
        ------
        EditError : `{prefix}.{name}: ...` naming what is wrong
        """
        where = f"{prefix}.{self.name}"
        if value is None and (self.nullable or self.kind == "any"
                              or (not self.required and self.default is None)):
            return None
        return check_value(self.kind, value, where, minimum=self.minimum,
                           above_minimum=self.above_minimum, choices=self.choices,
                           maximum=self.maximum)


def check_value(kind: str, value: Any, where: str, *, minimum: float | None = None,
                above_minimum: bool = False, choices: tuple[str, ...] = (),
                maximum: float | None = None) -> Any:
    """Check one value of a kind of `KINDS`; `where` names the field in the message."""
    if kind == "text":
        if not isinstance(value, str):
            raise EditError(f"{where}: expected text, got {type_name(value)}")
        return value
    if kind == "names":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise EditError(f"{where}: expected a name or a list of names")
        return list(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise EditError(f"{where}: expected true or false, got {type_name(value)}")
        return value
    if kind in ("int", "seed"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise EditError(f"{where}: expected an integer, got {type_name(value)}")
        if kind == "seed" and not 0 <= value < SEED_LIMIT:
            raise EditError(f"{where}: must be in [0, 2**63), got {value}")
        _check_minimum(value, where, minimum, above_minimum)
        _check_maximum(value, where, maximum)
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EditError(f"{where}: expected a number, got {type_name(value)}")
        if not math.isfinite(value):
            raise EditError(f"{where}: must be finite, got {value}")
        _check_minimum(value, where, minimum, above_minimum)
        _check_maximum(value, where, maximum)
        return value
    if kind == "object":
        if not isinstance(value, dict):
            raise EditError(f"{where}: expected an object, got {type_name(value)}")
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise EditError(f"{where}: expected a list, got {type_name(value)}")
        return value
    if kind == "choice":
        if value not in choices:
            raise EditError(f"{where}: expected one of {', '.join(choices)}")
        return value
    return value


def _check_minimum(value: float, where: str, minimum: float | None, above: bool) -> None:
    if minimum is None:
        return
    if value < minimum or (above and value == minimum):
        relation = ">" if above else ">="
        raise EditError(f"{where}: must be {relation} {minimum:g}, got {value:g}")


def _check_maximum(value: float, where: str, maximum: float | None) -> None:
    if maximum is not None and value > maximum:
        got = f"{value:,}" if value < 10**30 else "a larger number"  # no 5000-digit text
        raise EditError(f"{where}: must be <= {maximum:,}, got {got}")


def check_fields(fields: Iterable[Field], values: dict[str, Any], prefix: str,
                 extra: Iterable[str] = ()) -> dict[str, Any]:
    """Refuse unknown and missing fields, check every given one; return the checked values.

    `extra` names keys allowed besides the fields (an edit's `op` and `label`).

    Raises
    ------
    EditError : the first problem, naming the field
    """
    declared = {field.name: field for field in fields}
    allowed = [*extra, *declared]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise EditError(f"{prefix}.{unknown[0]}: unknown field (allowed: "
                        f"{', '.join(sorted(allowed))})")
    missing = [name for name, field in declared.items() if field.required and name not in values]
    if missing:
        raise EditError(f"{prefix}.{missing[0]}: required field is missing")
    return {name: declared[name].check(value, prefix) if name in declared else value
            for name, value in values.items()}


def field_table(fields: Iterable[Field]) -> str:
    """The fields as a Markdown table (for docs/recipes.md)."""
    lines = ["| field | kind | default | what it is |", "| --- | --- | --- | --- |"]
    for field in fields:
        if field.required:
            default = "required"
        elif field.default is None:
            default = "–"
        else:
            default = f"`{_json(field.default)}`"
        lines.append(f"| `{field.name}` | {field.kind_text} | {default} | {field.doc} |")
    return "\n".join(lines)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
