"""A lazy tree index over a Session: the module hierarchy (or dotted-name prefixes) by level.

The index follows the session's document: a model's module tree
(`engine.document.model_tree`) or a checkpoint's prefix tree over dotted names
(`engine.document.checkpoint_tree`), made anew when the document is replaced (a
checkpoint given an architecture). Nothing here reads tensor data: shapes and dtypes
come from the document's metadata, so listing a lazily read checkpoint stays cheap.

The index does not subscribe to the session itself: its owner (the GUI's tree model)
calls the `invalidate_*` methods in the order its views need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .document.tree_base import (
    BUFFER,
    GROUP,
    MODULE,
    PARAMETER,
    TENSOR,
    TENSOR_KINDS,
    DocumentTree,
    NodeInfo,
    ancestors,
    parent_path,
)

if TYPE_CHECKING:
    from .session import Session

__all__ = ["BUFFER", "GROUP", "MODULE", "PARAMETER", "TENSOR", "TENSOR_KINDS", "NodeInfo",
           "TreeIndex", "ancestors", "parent_path"]


class TreeIndex:
    """Lazily built levels of a session's tree, with cached per-node facts.

    Parameters
    ----------
    session : the document holder to index; only read, never changed
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._tree: DocumentTree = session.document.tree()

    @property
    def _current(self) -> DocumentTree:
        if self._tree.document is not self.session.document:
            self._tree = self.session.document.tree()
        return self._tree

    @property
    def root_kind(self) -> str:
        return self._current.root_kind

    def child_names(self, path: str) -> list[str]:
        """Dotted paths of the children of `path`, in document order (built once, cached)."""
        return self._current.child_names(path)

    def has_children(self, path: str) -> bool:
        """Whether `path` has children, without building the list when it is not cached."""
        return self._current.has_children(path)

    def exists(self, path: str) -> bool:
        """Whether a node with this dotted path is in the document."""
        return self._current.exists(path)

    def kind(self, path: str) -> str:
        """The kind of node at `path` (see NodeInfo.kind) without computing its counts."""
        return self._current.kind(path)

    def info(self, path: str) -> NodeInfo:
        """The facts shown for the node at `path` (computed once, then cached)."""
        return self._current.info(path)

    def tied_paths(self) -> set[str]:
        """Every path that shares its tensor or module with another path."""
        return self._current.tied_paths()

    def invalidate_names(self, names: list[str]) -> set[str]:
        """Forget the facts of these nodes and of their ancestors; return the paths dropped."""
        return self._current.invalidate_names(names)

    def invalidate_ties(self, names: list[str] | None = None) -> None:
        """Forget which names share a tensor or a module (only `names`' groups, where the
        tree can limit the work)."""
        self._current.invalidate_ties(names)

    def forget(self, paths: list[str]) -> None:
        """Forget the facts of exactly these nodes (not their ancestors)."""
        self._current.forget(paths)

    def invalidate_subtree(self, path: str) -> None:
        """Forget the children and facts of `path`, everything below it and its ancestors' facts."""
        self._current.invalidate_subtree(path)

    def invalidate_all(self) -> None:
        """Forget everything (a new document, or a change the index cannot localize)."""
        self._current.invalidate_all()

    def cached_paths(self) -> int:
        """How many nodes have cached facts (for tests of laziness)."""
        return self._current.cached_paths()

    def warm(self, rows: int = 64, big_level: int = 5_000) -> TreeIndex:
        """Build the top level and the facts of its first `rows` rows now, and (checkpoint
        mode) group every level with more than `big_level` names below it.

        Meant for a worker thread right after a document is opened, so that showing it
        costs the GUI thread only what is drawn, and expanding a level of a huge
        checkpoint only what it shows. Returns the index itself.
        """
        self._current.warm(rows, big_level)
        return self
