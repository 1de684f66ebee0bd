"""A lazy tree index over a Session: the module hierarchy (or dotted-name prefixes) by level.

Model mode: a module's children are its direct submodules, then its own parameters,
then its own buffers. Checkpoint mode: a prefix tree over the dotted tensor names,
built once (one pass over the names) and rebuilt after a structure event; a name may
be a tensor and a prefix at once. Nodes are addressed by dotted path ("" is the root).

Nothing here reads tensor data: shapes and dtypes come from `Session.tensor_meta`
(or the live tensor's metadata), so listing a lazily read checkpoint stays cheap.
Per-node facts (`NodeInfo`) are computed once on first request and cached until an
event names the node, one of its ancestors' subtrees changes, or `invalidate_all`.

The index does not subscribe to the session itself: its owner (the GUI's tree model)
calls the `invalidate_*` methods in the order its views need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .listing import dtype_name

if TYPE_CHECKING:
    from torch import nn

    from .session import Session

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
        return "" if self.shape is None else "(" + ", ".join(str(s) for s in self.shape) + ")"


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


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


class TreeIndex:
    """Lazily built levels of a session's tree, with cached per-node facts.

    Parameters
    ----------
    session : the document to index; only read, never changed
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._children: dict[str, list[str]] = {}
        self._info: dict[str, NodeInfo] = {}
        # Checkpoint mode: the full names below each grouped path ("" holds all); a
        # level is grouped from its parent's list when it is first asked for.
        self._below: dict[str, list[str]] = {}
        self._child_sets: dict[str, set[str]] = {}
        self._tensor_ties: dict[str, tuple[str, ...]] | None = None
        self._module_ties: dict[str, tuple[str, ...]] | None = None
        self._position: dict[str, int] | None = None

    # ------------------------------------------------------------------ structure
    @property
    def root_kind(self) -> str:
        return MODULE if self.session.mode == "model" else GROUP

    def child_names(self, path: str) -> list[str]:
        """Dotted paths of the children of `path`, in document order (built once, cached)."""
        cached = self._children.get(path)
        if cached is None:
            cached = self._children[path] = self._build_children(path)
        return cached

    def has_children(self, path: str) -> bool:
        """Whether `path` has children, without building the list when it is not cached."""
        cached = self._children.get(path)
        if cached is not None:
            return bool(cached)
        if self.session.model is not None:
            module = self._module(path)
            if module is None:
                return False
            return (any(child is not None for child in module._modules.values())
                    or any(t is not None for t in module._parameters.values())
                    or any(t is not None for t in module._buffers.values()))
        return bool(self._names_below(path))

    def exists(self, path: str) -> bool:
        """Whether a node with this dotted path is in the document."""
        if path == "":
            return True
        if self.session.checkpoint is not None and path in self.session.checkpoint.entries:
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
        if path == "":
            return self.root_kind
        if self.session.model is not None:
            owner = self._module(parent_path(path))
            leaf = path.rpartition(".")[2]
            if owner is None:
                raise KeyError(path)
            if owner._modules.get(leaf) is not None:
                return MODULE
            if owner._parameters.get(leaf) is not None:
                return PARAMETER
            if owner._buffers.get(leaf) is not None:
                return BUFFER
            raise KeyError(path)
        assert self.session.checkpoint is not None
        if path in self.session.checkpoint.entries:
            return TENSOR
        if not self.exists(path):
            raise KeyError(path)
        return GROUP

    def _build_children(self, path: str) -> list[str]:
        def join(leaf: str) -> str:
            return f"{path}.{leaf}" if path else leaf

        if self.session.model is not None:
            module = self._module(path)
            if module is None:
                return []
            names = [join(k) for k, v in module._modules.items() if v is not None]
            names += [join(k) for k, v in module._parameters.items() if v is not None]
            names += [join(k) for k, v in module._buffers.items() if v is not None]
            return names
        return self._group_level(path)

    def _module(self, path: str) -> nn.Module | None:
        model = self.session.model
        assert model is not None
        module = model
        if path:
            for part in path.split("."):
                module = module._modules.get(part)
                if module is None:
                    return None
        return module

    def _names_below(self, path: str) -> list[str]:
        """Checkpoint mode: every full name strictly below `path` (grouping levels on the way)."""
        below = self._below.get(path)
        if below is None:
            if path == "":
                assert self.session.checkpoint is not None
                below = self._below[""] = list(self.session.checkpoint.entries)
            else:
                self.child_names(parent_path(path))  # groups the parent's level
                below = self._below.setdefault(path, [])
        return below

    def _group_level(self, path: str) -> list[str]:
        # One pass over the names below `path`: each next dotted component becomes a
        # child on first sight (so children keep the file's order), and each child
        # keeps the names below it for when it is expanded in turn.
        assert self.session.checkpoint is not None
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

    def warm(self, rows: int = 64, big_level: int = 5_000) -> TreeIndex:
        """Build the top level and the facts of its first `rows` rows now, and (checkpoint
        mode) group every level with more than `big_level` names below it.

        Meant for a worker thread right after a document is opened, so that showing it
        costs the GUI thread only what is drawn, and expanding a level of a huge
        checkpoint only what it shows. Returns the index itself.
        """
        top = [""] if self.root_kind == MODULE else self.child_names("")
        self._tensor_tied_with("")  # the tie groups: a pass over every tensor
        for path in top[:rows]:
            self.info(path)
        if self.root_kind == MODULE:
            for path in self.child_names("")[:rows]:
                self.info(path)
            return self
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
        return self

    # ------------------------------------------------------------------ facts
    def info(self, path: str) -> NodeInfo:
        """The facts shown for the node at `path` (computed once, then cached)."""
        cached = self._info.get(path)
        if cached is None:
            cached = self._info[path] = self._compute_info(path)
        return cached

    def _compute_info(self, path: str) -> NodeInfo:
        kind = self.kind(path)
        name = path.rpartition(".")[2]
        if self.session.model is not None:
            if kind == MODULE:
                return self._module_info(path, name)
            entry = self.session.entry(path)
            tensor = entry.tensor
            trainable = ("yes" if tensor.requires_grad else "no") if kind == PARAMETER else ""
            return NodeInfo(path, name, kind, "Parameter" if kind == PARAMETER else "buffer",
                            tuple(tensor.shape), dtype_name(tensor.dtype), tensor.numel(),
                            trainable, self._tensor_tied_with(path), False)
        has_children = bool(self._names_below(path))
        if kind == TENSOR:
            shape, dtype = self.session.tensor_meta(path)
            return NodeInfo(path, name, kind, "tensor", tuple(shape), dtype_name(dtype),
                            _numel(shape), "", self._tensor_tied_with(path), has_children)
        numel, dtypes = self._group_totals(path)
        return NodeInfo(path, name or "(checkpoint)", kind, "", None, ", ".join(dtypes), numel,
                        "", (), has_children)

    def _module_info(self, path: str, name: str) -> NodeInfo:
        module = self._module(path)
        assert module is not None
        numel = 0
        trainable = 0
        dtypes: dict[str, None] = {}
        for tensor in module.parameters():  # unique tensors: ties inside count once
            count = tensor.numel()
            numel += count
            if tensor.requires_grad:
                trainable += count
            dtypes[dtype_name(tensor.dtype)] = None
        if numel == 0:
            state = ""
        elif trainable == numel:
            state = "yes"
        elif trainable == 0:
            state = "no"
        else:
            state = "partial"
        tied = () if path == "" else self._module_tied_with(path)
        return NodeInfo(path, name or type(module).__name__, MODULE, type(module).__name__,
                        None, ", ".join(dtypes), numel, state, tied,
                        self.has_children(path))

    def _group_totals(self, path: str) -> tuple[int, list[str]]:
        assert self.session.checkpoint is not None
        entries = self.session.checkpoint.entries
        numel = 0
        dtypes: set[torch.dtype] = set()
        seen: set[int] = set()
        for name in self._names_below(path):
            slot = entries[name]
            key = id(slot)
            if key in seen:
                continue  # a tied tensor counts once
            seen.add(key)
            numel += _numel(slot.shape)
            dtypes.add(slot.dtype)
        return numel, sorted(dtype_name(dtype) for dtype in dtypes)

    def _tensor_tied_with(self, name: str) -> tuple[str, ...]:
        if self._tensor_ties is None:
            self._tensor_ties = {}
            for group in self.session.tie_groups():
                for member in group:
                    self._tensor_ties[member] = tuple(n for n in group if n != member)
        return self._tensor_ties.get(name, ())

    def _module_tied_with(self, path: str) -> tuple[str, ...]:
        if self._module_ties is None:
            from .edits.ties import module_tie_groups

            self._module_ties = {}
            assert self.session.model is not None
            for group in module_tie_groups(self.session.model):
                for member in group:
                    self._module_ties[member] = tuple(p for p in group if p != member)
        return self._module_ties.get(path, ())

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

        With `names` (checkpoint mode: the names a flags event lists, which include
        every old and new member of the groups that changed), only their groups are
        worked out again, so a tie in a 100,000-name checkpoint costs its names.
        """
        self._module_ties = None
        if names is None or self.session.checkpoint is None or self._tensor_ties is None:
            self._tensor_ties = None
            return
        entries = self.session.checkpoint.entries
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
        assert self.session.checkpoint is not None
        if self._position is None or len(self._position) != len(self.session.checkpoint.entries):
            self._position = {name: i for i, name in enumerate(self.session.checkpoint.entries)}
        return self._position

    def tied_paths(self) -> set[str]:
        """Every path that shares its tensor or module with another path."""
        self._tensor_tied_with("")  # fill the caches
        paths = set(self._tensor_ties or {})
        if self.session.model is not None:
            self._module_tied_with("")
            paths.update(self._module_ties or {})
        return paths

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
        if self.session.checkpoint is not None:
            self._below.clear()  # names moved: group the levels again on next use
            self._children.clear()
            self._position = None
        self.invalidate_ties()

    def invalidate_all(self) -> None:
        """Forget everything (a new document, or a change the index cannot localize)."""
        self._children.clear()
        self._child_sets.clear()
        self._info.clear()
        self._below.clear()
        self._position = None
        self.invalidate_ties()

    def cached_paths(self) -> int:
        """How many nodes have cached facts (for tests of laziness)."""
        return len(self._info)
