"""`group`: several edits performed as one step; a failing child reverts the others."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import EditError
from ..schema import Field as F
from .base import Edit, build_edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document


@register
class Group(Edit):
    """Run `edits` in order inside one transaction; undo reverts them all at once."""

    op = "group"
    fields = (
        F("edits", "list", "the edits, applied in order as one step", required=True),
    )

    def parse(self) -> None:
        edits = self.spec["edits"]
        if not isinstance(edits, list) or not edits:
            raise EditError("group.edits: expected a non-empty list of edits")
        self.children = []
        for position, child in enumerate(edits):
            try:
                self.children.append(build_edit(child))
            except EditError as error:
                raise EditError(f"group.edits[{position}]: {error}") from None

    @classmethod
    def of(cls, label: str, children: list[Edit]) -> Group:
        """A group of edits that already ran (from `Session.group`)."""
        group = cls({"op": "group", "label": label, "edits": [c.to_dict() for c in children]})
        group.children = list(children)
        return group

    def to_dict(self) -> dict[str, Any]:
        spec = super().to_dict()
        spec["edits"] = [child.to_dict() for child in self.children]
        return spec

    def describe(self) -> str:
        return f"{len(self.spec['edits'])} edits"

    def code_to_run(self, doc: Any = None) -> list[str]:
        return [f"group.edits[{position}]: {line}"
                for position, child in enumerate(self.children)
                for line in child.code_to_run(doc)]

    def perform(self, doc: Document, tx: Transaction) -> Any:
        results = []
        for position, child in enumerate(self.children):
            child.trusted = self.trusted
            # A child may replace the document (attach): the next one works on the new.
            try:
                child.check_mode(tx.document)
                results.append(child.perform(tx.document, tx))
            except EditError as error:
                raise EditError(f"group.edits[{position}]: {error}") from None
        return results
