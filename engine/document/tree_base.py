"""What a lazy tree over a document shows per node, and the caching every tree shares.

Nodes are addressed by dotted path ("" is the root). Per-node facts (`NodeInfo`) are
computed once on first request and cached until an event names the node, one of its
ancestors' subtrees changes, or `invalidate_all`. A model's tree and a checkpoint's
tree (`model_tree`, `checkpoint_tree`) say what the levels and the facts are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .rows import shape_text

#: kinds of node
MODULE, PARAMETER, BUFFER, GROUP, TENSOR = "module", "parameter", "buffer", "group", "tensor"
TENSOR_KINDS = frozenset({PARAMETER, BUFFER, TENSOR})


@dataclass(frozen=True)
class NodeInfo:
    """What the tree shows about one node; every field is ready to display.

    Attributes
    ----------
    path : dotted path ("" for the root)
    name : last component of the path (the class name for the root)
    kind : "module", "parameter", "buffer" (model mode), "group" or "tensor" (checkpoint)
    type_name : module class, "Parameter", "buffer", "tensor" or ""
    shape : tensor shape, None for modules and groups
    dtype : "float32"; for a module or group the dtypes below it ("float32, int64")
    parameters : elements (numel) of the tensor, or of the unique tensors below it
        (parameters only for a module; every tensor for a checkpoint group)
    trainable : "yes", "no", "partial" or "" (buffers, checkpoints, no parameters)
    tied_with : other names sharing this tensor (or module); empty when not tied
    has_children : whether the node has any child, known without listing them
    """

    path: str
    name: str
    kind: str
    type_name: str
    shape: tuple[int, ...] | None
    dtype: str
    parameters: int
    trainable: str
    tied_with: tuple[str, ...]
    has_children: bool

    @property
    def is_tensor(self) -> bool:
        return self.kind in TENSOR_KINDS

    @property
    def frozen(self) -> bool:
        return self.trainable == "no"

    @property
    def tied(self) -> bool:
        return bool(self.tied_with)

    @property
    def shape_text(self) -> str:
        return "" if self.shape is None else shape_text(self.shape)


def parent_path(path: str) -> str:
    """The dotted path of a node's parent ("" for top-level names)."""
    return path.rpartition(".")[0]


def ancestors(path: str) -> list[str]:
    """Every ancestor path of `path`, nearest first, the root "" last (empty for the root)."""
    result = []
    while path:
        path = parent_path(path)
        result.append(path)
    return result


class DocumentTree:
    """Lazily built levels of one document's tree, with cached per-node facts.

    Subclasses say what the levels are (`_build_children`, `kind`, `has_children`)
    and what a node's facts are (`_compute_info`); they only read the document.
    """

    root_kind = MODULE

    def __init__(self, document: Any) -> None:
        self.document = document
        self._children: dict[str, list[str]] = {}
        self._info: dict[str, NodeInfo] = {}
        self._child_sets: dict[str, set[str]] = {}
        self._tensor_ties: dict[str, tuple[str, ...]] | None = None

    # ------------------------------------------------------------------ structure
    def child_names(self, path: str) -> list[str]:
        """Dotted paths of the children of `path`, in document order (built once, cached)."""
        cached = self._children.get(path)
        if cached is None:
            cached = self._children[path] = self._build_children(path)
        return cached

    def has_children(self, path: str) -> bool:
        """Whether `path` has children, without building the list when it is not cached."""
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        """Whether a node with this dotted path is in the document."""
        if path == "":
            return True
        parent = parent_path(path)
        if not self.exists(parent):
            return False
        members = self._child_sets.get(parent)
        if members is None:
            members = self._child_sets[parent] = set(self.child_names(parent))
        return path in members

    def kind(self, path: str) -> str:
        """The kind of node at `path` (see NodeInfo.kind) without computing its counts."""
        raise NotImplementedError

    def _build_children(self, path: str) -> list[str]:
        raise NotImplementedError

    # ------------------------------------------------------------------ facts
    def info(self, path: str) -> NodeInfo:
        """The facts shown for the node at `path` (computed once, then cached)."""
        cached = self._info.get(path)
        if cached is None:
            cached = self._info[path] = self._compute_info(path)
        return cached

    def _compute_info(self, path: str) -> NodeInfo:
        raise NotImplementedError

    def _tensor_tied_with(self, name: str) -> tuple[str, ...]:
        if self._tensor_ties is None:
            self._tensor_ties = {}
            for group in self.document.tie_groups():
                for member in group:
                    self._tensor_ties[member] = tuple(n for n in group if n != member)
        return self._tensor_ties.get(name, ())

    def tied_paths(self) -> set[str]:
        """Every path that shares its tensor or module with another path."""
        self._tensor_tied_with("")  # fill the cache
        return set(self._tensor_ties or {})

    # ------------------------------------------------------------------ invalidation
    def invalidate_names(self, names: list[str]) -> set[str]:
        """Forget the facts of these nodes and of their ancestors (after a value or flag change).

        Returns
        -------
        Every path whose facts were dropped (the names and their ancestors).
        """
        dropped: set[str] = set()
        for name in names:
            for path in (name, *ancestors(name)):
                if path in dropped:
                    break  # its ancestors are already done
                dropped.add(path)
                self._info.pop(path, None)
        return dropped

    def invalidate_ties(self, names: list[str] | None = None) -> None:
        """Forget which names share a tensor or a module (after a tie, untie or structure edit).

        `names`, where a tree can use them, limits the work to those names' groups.
        """
        self._tensor_ties = None

    def forget(self, paths: list[str]) -> None:
        """Forget the facts of exactly these nodes (not their ancestors)."""
        for path in paths:
            self._info.pop(path, None)

    def invalidate_subtree(self, path: str) -> None:
        """Forget the children and facts of `path`, everything below it and its ancestors' facts."""
        prefix = f"{path}."
        self._child_sets.clear()
        for cache in (self._children, self._info):
            for key in [key for key in cache if path == "" or key == path
                        or key.startswith(prefix)]:
                del cache[key]
        for ancestor in ancestors(path):
            self._info.pop(ancestor, None)
        self.invalidate_ties()

    def invalidate_all(self) -> None:
        """Forget everything (a new document, or a change the index cannot localize)."""
        self._children.clear()
        self._child_sets.clear()
        self._info.clear()
        self.invalidate_ties()

    def cached_paths(self) -> int:
        """How many nodes have cached facts (for tests of laziness)."""
        return len(self._info)

    def warm(self, rows: int = 64, big_level: int = 5_000) -> None:
        """Build the top of the tree and the facts of its first `rows` rows now."""
        raise NotImplementedError
