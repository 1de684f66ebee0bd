"""The base of every edit: a JSON-ready dict parsed into a command with a label.

An edit validates its fields when it is built (types, names of fields), validates
against the document when it runs (targets exist, shapes agree) before it changes
anything, and makes every change through the transaction it is given, so a failure
part-way is rolled back by the session. An edit is given the document and the
transaction, never the Session.

The spec an edit was built from is never rewritten. What the edit resolves while it
runs and a replay must repeat (a drawn seed, the canonical name of `classifier[-1]`,
the exact module built) is *recorded* beside it (`record`), and the recipe is written
from both (`to_dict`); what only the script export needs (the tensors a glob
selected) goes into `resolved`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import EditError
from ..schema import Field, check_fields, check_value
from ..seeds import draw_seed

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document

EDIT_TYPES: dict[str, type[Edit]] = {}

#: what a document lacks for an edit of each mode, for the refusal's message
_NEEDS = {"model": "an architecture", "checkpoint": "checkpoint mode"}


def register(cls: type[Edit]) -> type[Edit]:
    """Class decorator: make an edit type available under its `op`."""
    EDIT_TYPES[cls.op] = cls
    return cls


#: how deeply an edit's JSON may nest (groups of groups, lists in values, module specs)
MAX_DEPTH = 64


def build_edit(spec: Any) -> Edit:
    """Build the edit described by `spec`; raise EditError naming the bad field."""
    if isinstance(spec, Edit):
        return spec
    if not isinstance(spec, dict):
        raise EditError(f"edit: expected an object with an 'op' field, got {type(spec).__name__}")
    check_depth(spec, spec.get("op") if isinstance(spec.get("op"), str) else "edit")
    op = spec.get("op")
    if not isinstance(op, str):
        raise EditError("op: missing; every edit needs an 'op' field")
    edit_type = EDIT_TYPES.get(op)
    if edit_type is None:
        known = ", ".join(sorted(EDIT_TYPES))
        raise EditError(f"op: unknown edit '{op}' (known: {known})")
    return edit_type(spec)


def check_depth(value: Any, field: str, limit: int = MAX_DEPTH) -> None:
    """Raise EditError naming `field` when `value` nests lists and objects deeper than
    `limit` (checked without recursion, so no depth can exhaust the stack)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            raise EditError(f"{field}: nested more than {limit} levels deep")
        if isinstance(item, dict):
            pending += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list | tuple):
            pending += [(child, depth + 1) for child in item]


class Edit:
    """One kind of edit. Subclasses set `op`, `fields` and implement `perform`."""

    op: ClassVar[str] = ""
    #: the declared fields (see `engine.schema`): checked when the edit is built, and
    #: the source of the GUI's labels and of docs/recipes.md's tables
    fields: ClassVar[tuple[Field, ...]] = ()
    #: document modes the edit works in
    modes: ClassVar[frozenset[str]] = frozenset({"model", "checkpoint"})
    #: set by `Session.apply` when the user trusted the code `code_to_run` declared
    trusted: bool = False

    def __init__(self, spec: dict[str, Any]) -> None:
        check_fields(self.fields, spec, self.op, extra=("op", "label"))
        self.spec: dict[str, Any] = copy.deepcopy(spec)
        #: fields resolved while running that the recipe records (seeds, canonical
        #: names, built modules); they override the spec's in `to_dict`
        self.recorded: dict[str, Any] = {}
        #: what the edit resolved while running (selected names, placements), for the
        #: script export; not part of the recipe
        self.resolved: dict[str, Any] = {}
        if "label" in spec and not isinstance(spec["label"], str):
            raise EditError(f"{self.op}.label: expected text")
        self.parse()

    @classmethod
    def field(cls, name: str) -> Field:
        """The declaration of field `name`.

        Raises
        ------
        KeyError : the edit has no such field
        """
        for field in cls.fields:
            if field.name == name:
                return field
        raise KeyError(f"{cls.op}.{name}")

    # --- to override ----------------------------------------------------------------
    def parse(self) -> None:
        """Check what the declared fields cannot say alone (one of several fields, a
        regex that compiles); raise EditError naming the field."""

    def describe(self) -> str:
        """A short label for menus and the history panel, e.g. 'Freeze layer1'."""
        return self.op.replace("_", " ").capitalize()

    def perform(self, doc: Document, tx: Transaction) -> Any:
        """Validate against `doc`, then change it through `tx`; return a result."""
        raise NotImplementedError

    def code_to_run(self, doc: Document | None = None) -> list[str]:
        """What code performing this edit would run beyond torch and the libraries named by
        a spec, one line each naming the field (see `engine.code_needs`); nothing runs.

        `doc` is the document it would be applied to (its `source` says which folder an
        `hf` architecture means); None when there is none yet.

        `Session.apply` refuses an edit with code unless given `trust=True`, and then sets
        `trusted` before `perform`.
        """
        return []

    # --- common ---------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self.spec.get("label") or self.describe()

    def to_dict(self) -> dict[str, Any]:
        """The edit as a JSON-ready dict: the spec, with what was recorded while it ran."""
        return copy.deepcopy({**self.spec, **self.recorded})

    def value(self, field: str, default: Any = None) -> Any:
        """A field as the edit ran it: recorded while running, else as given."""
        if field in self.recorded:
            return self.recorded[field]
        return self.spec.get(field, default)

    def record(self, **fields: Any) -> None:
        """Record fields resolved while running, for the recipe (the spec stays as given)."""
        self.recorded.update(fields)

    def seed(self) -> int:
        """The edit's seed: given, recorded by an earlier run, or drawn now and recorded."""
        seed = self.value("seed")
        if seed is None:
            seed = draw_seed()
            self.record(seed=seed)
        return seed

    @classmethod
    def works_on(cls, doc: Document) -> bool:
        """Whether edits of this kind work on `doc`'s mode (the one place that asks)."""
        return doc.mode in cls.modes

    def check_mode(self, doc: Document) -> None:
        """Refuse a document of a mode the edit does not work in."""
        if not self.works_on(doc):
            needs = " or ".join(_NEEDS[mode] for mode in sorted(self.modes))
            raise EditError(f"{self.op}: not available in {doc.mode} mode (needs {needs})")

    # --- field readers (the values were checked against the declaration) ------------
    def _name(self, field: str) -> str:
        return f"{self.op}.{field}"

    def get_str(self, field: str, default: str | None = None) -> str | None:
        value = self.spec.get(field, default)
        return None if value is None else check_value("text", value, self._name(field))

    def get_names(self, field: str) -> list[str] | None:
        """A name or a list of names (globs allowed)."""
        value = self.spec.get(field)
        return None if value is None else check_value("names", value, self._name(field))

    def get_bool(self, field: str, default: bool = False) -> bool:
        return check_value("bool", self.spec.get(field, default), self._name(field))

    def get_int(
        self, field: str, default: int | None = None, minimum: int | None = None
    ) -> int | None:
        value = self.spec.get(field, default)
        return None if value is None else check_value("int", value, self._name(field),
                                                      minimum=minimum)

    def get_number(self, field: str, default: float | None = None) -> float | None:
        value = self.spec.get(field, default)
        return None if value is None else check_value("number", value, self._name(field))


def names_text(value: Any, limit: int = 2) -> str:
    """A short text for a name or list of names in a label: 'a, b and 3 more'."""
    names = [value] if isinstance(value, str) else list(value or [])
    if len(names) <= limit + 1:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"
