"""Filter a document's tree by name, glob or type, without building the tree (GUI and CLI).

The text is read as:

- a glob when it holds `*`, `?` or `[` (matched against the whole dotted name,
  e.g. `layer*.conv1.weight`, or against the last part alone, e.g. `*bias`);
- a type when it starts with `type:` (`type:Conv2d`, also `type:buffer`);
- otherwise a case-insensitive part of the dotted name, or a type name
  (`bn` finds `layer1.0.bn1`; `Conv2d` finds every Conv2d).

Matching runs over the flat lists of names (tensors and module paths) once per
filter text, so it costs one pass however large the tree, and the tree model then
builds only the levels a view opens. A row is shown when it matches, lies below a
match, or is an ancestor of a match.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .document.tree_base import ancestors

if TYPE_CHECKING:
    from .session import Session

GLOB_CHARS = frozenset("*?[")


@dataclass
class FilterResult:
    """Which dotted paths a filter text selects in a session.

    Attributes
    ----------
    text : the filter text as typed
    matched : paths that match, in document order
    """

    text: str
    matched: list[str] = field(default_factory=list)
    _matched_set: set[str] = field(default_factory=set, repr=False)
    _ancestors: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def build(cls, session: Session, text: str) -> FilterResult:
        """Match `text` against every tensor name and module path of `session`."""
        result = cls(text.strip())
        result.refresh(session)
        return result

    def refresh(self, session: Session | None) -> None:
        """Match again (after the document's structure changed)."""
        self.matched = [] if session is None else _match(session, self.text)
        self._matched_set = set(self.matched)
        self._ancestors = {ancestor for path in self.matched for ancestor in ancestors(path)}

    def matches(self, path: str) -> bool:
        """Whether `path` itself matched."""
        return path in self._matched_set

    def shows(self, path: str) -> bool:
        """Whether the row for `path` is shown."""
        return path in self._ancestors or self.shows_all_below(path)

    def shows_all_below(self, path: str) -> bool:
        """Whether `path` matched or lies below a match (so all its children are shown)."""
        if path in self._matched_set:
            return True
        return any(ancestor in self._matched_set for ancestor in ancestors(path))

    def has_shown_children(self, path: str) -> bool:
        """Whether some child of `path` is shown, for a row that is shown as an ancestor."""
        return path in self._ancestors

    def expand_paths(self, limit: int = 200) -> list[str]:
        """Ancestors of the first `limit` matches: the rows to expand so matches are visible."""
        wanted: dict[str, None] = {}
        for path in self.matched[:limit]:
            for ancestor in reversed(ancestors(path)):
                wanted[ancestor] = None
        return list(wanted)


def _match(session: Session, text: str) -> list[str]:
    if not text:
        return []
    rows = session.document.typed_paths()
    if text.lower().startswith("type:"):
        wanted = text[5:].strip().lower()
        return [path for path, type_name in rows if type_name.lower() == wanted]
    if any(char in GLOB_CHARS for char in text):
        return [path for path, _ in rows
                if fnmatch.fnmatchcase(path, text)
                or fnmatch.fnmatchcase(path.rpartition(".")[2], text)]
    lowered = text.lower()
    return [path for path, type_name in rows
            if lowered in path.lower() or lowered == type_name.lower()]
