"""`tie` / `untie`: share one Parameter (or one module, or one checkpoint tensor) between names.

Tying points the target's owner attribute at the source's very Parameter object, as
`model.lm_head.weight = model.embed.weight` does; untying gives the target a copy of
its own with the same values. Undo puts back the very objects that were there. How a
document binds names (a module's registries, a checkpoint's Slots) is the document's
business (`Document.tie` / `Document.untie`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..schema import Field as F
from .base import Edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document


@register
class Tie(Edit):
    """Make `target` the same object as `source` (tensors of equal shape, or modules)."""

    op = "tie"
    fields = (
        F("target", "text", "the tensor or module that will share", required=True),
        F("source", "text", "the tensor or module shared", required=True),
    )

    def describe(self) -> str:
        return f"Tie {self.value('target')} to {self.value('source')}"

    def perform(self, doc: Document, tx: Transaction) -> Any:
        kind, target, source = doc.tie(tx, self.spec["target"], self.spec["source"])
        self.record(target=target, source=source)
        self.resolved["kind"] = kind
        return None


@register
class Untie(Edit):
    """Give a tied `target` its own copy, with the same values and flags."""

    op = "untie"
    fields = (
        F("target", "text", "the tied tensor or module that gets its own copy", required=True),
    )

    def describe(self) -> str:
        return f"Untie {self.value('target')}"

    def perform(self, doc: Document, tx: Transaction) -> Any:
        kind, target = doc.untie(tx, self.spec["target"])
        self.record(target=target)
        self.resolved["kind"] = kind
        return None
