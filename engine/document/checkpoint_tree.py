"""The tree of a checkpoint: a prefix tree over the dotted tensor names.

Built once (one pass over the names, a level grouped when first asked for) and rebuilt
after a structure event; a name may be a tensor and a prefix at once.
"""

from __future__ import annotations

from .rows import count, dtype_name, numel
from .tree_base import GROUP, TENSOR, DocumentTree, NodeInfo, parent_path


class CheckpointTree(DocumentTree):
    """Lazy levels of a checkpoint document's names."""

    root_kind = GROUP

    def __init__(self, document: object) -> None:
        super().__init__(document)
        # The full names below each grouped path ("" holds all); a level is grouped
        # from its parent's list when it is first asked for.
        self._below: dict[str, list[str]] = {}
        self._position: dict[str, int] | None = None

    @property
    def _entries(self) -> dict:
        return self.document.entries

    def has_children(self, path: str) -> bool:
        cached = self._children.get(path)
        if cached is not None:
            return bool(cached)
        return bool(self._names_below(path))

    def exists(self, path: str) -> bool:
        return path in self._entries or super().exists(path)

    def kind(self, path: str) -> str:
        if path == "":
            return self.root_kind
        if path in self._entries:
            return TENSOR
        if not self.exists(path):
            raise KeyError(path)
        return GROUP

    def _build_children(self, path: str) -> list[str]:
        # One pass over the names below `path`: each next dotted component becomes a
        # child on first sight (so children keep the file's order), and each child
        # keeps the names below it for when it is expanded in turn.
        names = self._names_below(path)
        start = len(path) + 1 if path else 0
        order: dict[str, None] = {}
        groups: dict[str, list[str]] = {}
        for name in names:
            head, dot, _ = name[start:].partition(".")
            child = name[:start] + head
            order[child] = None
            if dot:
                below = groups.get(child)
                if below is None:
                    below = groups[child] = []
                below.append(name)
        for child in order:
            self._below[child] = groups.get(child, [])
        children = list(order)
        # Files often list numbered children as text ("10" before "2"); a level whose
        # children are all numbers is shown in numeric order, like a module list.
        heads = [child[start:] for child in children]
        if heads and all(head.isdigit() for head in heads):
            children = [child for _, child in sorted(zip(map(int, heads), children,
                                                         strict=True))]
        return children

    def _names_below(self, path: str) -> list[str]:
        """Every full name strictly below `path` (grouping levels on the way)."""
        below = self._below.get(path)
        if below is None:
            if path == "":
                below = self._below[""] = list(self._entries)
            else:
                self.child_names(parent_path(path))  # groups the parent's level
                below = self._below.setdefault(path, [])
        return below

    def _compute_info(self, path: str) -> NodeInfo:
        kind = self.kind(path)
        name = path.rpartition(".")[2]
        has_children = bool(self._names_below(path))
        if kind == TENSOR:
            shape, dtype = self.document.tensor_meta(path)
            return NodeInfo(path, name, kind, "tensor", tuple(shape), dtype_name(dtype),
                            numel(shape), "", self._tensor_tied_with(path), has_children)
        totals = count(self.document.rows_of(self._names_below(path)))
        return NodeInfo(path, name or "(checkpoint)", kind, "", None,
                        ", ".join(sorted(totals.parameter_dtypes)), totals.parameters, "", (),
                        has_children)

    def invalidate_ties(self, names: list[str] | None = None) -> None:
        """With `names` (the names a flags event lists, which include every old and new
        member of the groups that changed), only their groups are worked out again, so a
        tie in a 100,000-name checkpoint costs its names."""
        if names is None or self._tensor_ties is None:
            self._tensor_ties = None
            return
        entries = self._entries
        position = self._positions()
        slots: dict[int, list[str]] = {}
        for name in names:
            self._tensor_ties.pop(name, None)
            slot = entries.get(name)
            if slot is not None:
                slots.setdefault(id(slot), []).append(name)
        for members in slots.values():
            if len(members) < 2:
                continue
            members.sort(key=lambda member: position.get(member, 0))
            for member in members:
                self._tensor_ties[member] = tuple(n for n in members if n != member)

    def _positions(self) -> dict[str, int]:
        if self._position is None or len(self._position) != len(self._entries):
            self._position = {name: i for i, name in enumerate(self._entries)}
        return self._position

    def invalidate_subtree(self, path: str) -> None:
        super().invalidate_subtree(path)
        self._below.clear()  # names moved: group the levels again on next use
        self._children.clear()
        self._position = None

    def invalidate_all(self) -> None:
        super().invalidate_all()
        self._below.clear()
        self._position = None

    def warm(self, rows: int = 64, big_level: int = 5_000) -> None:
        top = self.child_names("")
        self._tensor_tied_with("")  # the tie groups: a pass over every tensor
        for path in top[:rows]:
            self.info(path)
        pending = [path for path in top if len(self._names_below(path)) > big_level]
        while pending:
            path = pending.pop()
            children = self.child_names(path)
            for child in children[:rows]:
                self.info(child)
            for child in children:
                if len(self._below.get(child, ())) > big_level:
                    self.info(child)  # its counts cost a pass over every name below
                    pending.append(child)
