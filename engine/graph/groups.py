"""Group a graph's nodes by module: a tree of collapsible groups, identical siblings marked.

Every module that holds a node (an op that ran in it, a tensor it owns) is a group;
its children are the groups of the modules it called and the nodes that belong to it
directly. A group's key is its module path ("" is the root), with `@N` for the N-th
call of a module that ran more than once (a ResNet block's one ReLU runs twice: two
groups, so the layout never loops back). Keys never collide with node ids. Two
sibling groups are *identical* when they have the same type and the same inside
(ops, shapes, dtypes and wiring, relative to the group), as the blocks of a
transformer or the later layers of a ResNet stage are.

For each group the edges of the graph are lifted once: an edge between two of its
items (a child group stands for everything inside it), an edge entering it from
outside (an *in-port*, keyed by the outside source), or leaving it (an *out-port*,
keyed by the inside source). Layouts are computed per group from these.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .model import Graph, module_of_key

#: automatic expansion on first open stops once this many boxes are visible
OPEN_BOXES = 8
#: container types that never run code of their own: always open on first open
CONTAINERS = ("ModuleList", "ModuleDict", "ParameterList", "ParameterDict")


@dataclass
class Group:
    """One module's group.

    Attributes
    ----------
    path : the group's key: the module's dotted path ("" for the root), `@N` for a
        later call
    type : the module's class name
    parent : the key of the group it sits in (None for the root)
    depth : 0 for the root, 1 for its children, ...
    children : child group paths, in the order they first ran
    nodes : ids of the nodes directly in this group, in graph order
    edges : (from item, to item) pairs between this group's items, each once
    in_ports : outside sources read inside, each with the items that read it
    out_ports : inside sources read outside, each with the item that produces it
    signature : a hash of the inside, relative to the group (identical siblings match)
    identical_to : the first identical sibling's path, if this is a repeat
    repeats : for the first of identical siblings, how many there are (itself included)
    size : nodes inside, at any depth
    """

    path: str
    type: str
    parent: str | None = None
    depth: int = 0
    children: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    in_ports: dict[str, list[str]] = field(default_factory=dict)
    out_ports: dict[str, str] = field(default_factory=dict)
    signature: str = ""
    identical_to: str | None = None
    repeats: int = 1
    size: int = 0

    @property
    def module(self) -> str:
        """The dotted path of the group's module (the key without its call)."""
        return module_of_key(self.path)

    @property
    def call(self) -> int:
        """Which call of the module the group is (0 for the first)."""
        return int(self.path.rpartition("@")[2]) if self.path != self.module else 0

    @property
    def name(self) -> str:
        """The last part of the key (`relu@1`; the root's is "")."""
        return self.path.rpartition(".")[2] if "." in self.module else self.path

    def items(self) -> list[str]:
        """Child groups and direct nodes, the ids a layout of this group places."""
        return [*self.nodes, *self.children]


class GroupTree:
    """The groups of one Graph.

    Parameters
    ----------
    graph : the graph to group
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.groups: dict[str, Group] = {"": Group("", graph.module_types.get("", ""))}
        self._group_of: dict[str, str] = {}
        self._ancestors: dict[str, list[str]] = {}
        self._chains: dict[str, tuple[str, ...]] = {}
        for node in graph:
            parent = ""
            for depth, key in enumerate(node.scope, start=1):
                if key not in self.groups:
                    self.groups[key] = Group(key, graph.module_types.get(key, ""), parent,
                                             depth)
                    self.groups[parent].children.append(key)
                parent = key
            self._group_of[node.id] = parent
            self.groups[parent].nodes.append(node.id)
        self._order_children()
        self._count_sizes()
        self._lift_edges()
        self._sign()
        self._mark_identical()

    # ------------------------------------------------------------------ building
    def _order_children(self) -> None:
        # Children in the order their first node ran, so a layout reads like the code.
        first: dict[str, int] = {}
        for position, node in enumerate(self.graph):
            for key in node.scope:
                first.setdefault(key, position)
        for group in self.groups.values():
            group.children.sort(key=lambda child: first.get(child, len(first)))

    def _count_sizes(self) -> None:
        for group in sorted(self.groups.values(), key=lambda g: -g.depth):
            group.size = len(group.nodes) + sum(self.groups[c].size for c in group.children)

    def chain(self, node_id: str) -> tuple[str, ...]:
        """The groups holding a node, root first, its own group last."""
        chain = self._chains.get(node_id)
        if chain is None:
            chain = self._chains[node_id] = ("", *self.graph.nodes[node_id].scope)
        return chain

    def ancestors(self, key: str) -> list[str]:
        """The groups holding a group, root first (not the group itself)."""
        cached = self._ancestors.get(key)
        if cached is None:
            result = []
            parent = self.groups[key].parent
            while parent is not None:
                result.append(parent)
                parent = self.groups[parent].parent
            cached = self._ancestors[key] = result[::-1]
        return cached

    def keys_of_module(self, module: str) -> list[str]:
        """The groups of the module at dotted path `module` (one per call)."""
        return [key for key, group in self.groups.items() if group.module == module]

    def group_of(self, node_id: str) -> str:
        """The path of the group a node belongs to directly."""
        return self._group_of[node_id]

    def _lift_edges(self) -> None:
        seen: set[tuple[str, str, str]] = set()
        for source, target in self.graph.edges():
            source_chain = self.chain(source)
            target_chain = self.chain(target)
            common = 0
            while common < min(len(source_chain), len(target_chain)) and \
                    source_chain[common] == target_chain[common]:
                common += 1
            lca = source_chain[common - 1]
            source_item = source_chain[common] if common < len(source_chain) else source
            target_item = target_chain[common] if common < len(target_chain) else target
            if (lca, source_item, target_item) not in seen:
                seen.add((lca, source_item, target_item))
                self.groups[lca].edges.append((source_item, target_item))
            # Out of every group below the LCA on the source side ...
            for depth in range(common, len(source_chain)):
                group = self.groups[source_chain[depth]]
                item = source_chain[depth + 1] if depth + 1 < len(source_chain) else source
                group.out_ports.setdefault(source, item)
            # ... and into every group below it on the target side.
            for depth in range(common, len(target_chain)):
                group = self.groups[target_chain[depth]]
                item = target_chain[depth + 1] if depth + 1 < len(target_chain) else target
                readers = group.in_ports.setdefault(source, [])
                if item not in readers:
                    readers.append(item)

    def _sign(self) -> None:
        for group in sorted(self.groups.values(), key=lambda g: -g.depth):
            group.signature = self._signature(group)

    def _signature(self, group: Group) -> str:
        prefix = f"{group.path}."
        graph = self.graph

        def relative(item: str) -> str:
            tag = "g:" if item in self.groups else ""
            if not group.path:
                return tag + item
            if item.startswith(prefix):
                return tag + item[len(prefix):]
            if item.startswith(group.module + "#"):  # an op of the group's module
                return item[len(group.module):]
            return tag + item

        digest = hashlib.blake2b(digest_size=12)
        digest.update(group.type.encode())
        for node_id in group.nodes:
            node = graph.nodes[node_id]
            digest.update(f"|{relative(node_id)}:{node.op}:{node.shape}:{node.dtype}"
                          .encode())
        for child in group.children:
            digest.update(f"|{relative(child)}={self.groups[child].signature}".encode())
        for source, target in group.edges:
            digest.update(f"|{relative(source)}>{relative(target)}".encode())
        ports = sorted(tuple(readers) for readers in group.in_ports.values())
        digest.update(f"|in{[[relative(r) for r in rs] for rs in ports]}".encode())
        outs = sorted(relative(item) for item in group.out_ports.values())
        digest.update(f"|out{outs}".encode())
        return digest.hexdigest()

    def _mark_identical(self) -> None:
        # Only groups with groups inside: two Conv2d of one shape are not worth a mark.
        for group in self.groups.values():
            first_of: dict[tuple[str, str], str] = {}
            for child in group.children:
                sub = self.groups[child]
                if not sub.children:
                    continue
                key = (sub.type, sub.signature)
                if key in first_of:
                    sub.identical_to = first_of[key]
                    self.groups[first_of[key]].repeats += 1
                else:
                    first_of[key] = child

    # ------------------------------------------------------------------ expansion
    def initial_expanded(self, boxes: int = OPEN_BOXES) -> set[str]:
        """The groups open when a graph is first shown.

        The root is open, and so is every container (ModuleList, ModuleDict) whose
        parent is; then, while fewer than `boxes` boxes are visible, the largest
        visible group opens (a language model's single `model` child, say), so a
        32-block model opens on its ~35 blocks and a ResNet on its top-level layers.
        """
        expanded = {""}
        self._open_containers(expanded, "")
        while True:
            visible = self.visible_items(expanded)
            if len(visible) >= boxes:
                break
            closed = [item for item in visible if item in self.groups and
                      self.groups[item].children]
            if not closed:
                break
            largest = max(closed, key=lambda path: self.groups[path].size)
            expanded.add(largest)
            self._open_containers(expanded, largest)
        return expanded

    def _open_containers(self, expanded: set[str], path: str) -> None:
        for child in self.groups[path].children:
            if self.groups[child].type in CONTAINERS:
                expanded.add(child)
                self._open_containers(expanded, child)

    def visible_items(self, expanded: Iterable[str]) -> list[str]:
        """Every box drawn for this expansion: nodes and collapsed groups (not the open
        groups' frames)."""
        expanded = set(expanded) | {""}
        result: list[str] = []
        stack = [""]
        while stack:
            group = self.groups[stack.pop()]
            result.extend(group.nodes)
            for child in group.children:
                if child in expanded:
                    stack.append(child)
                else:
                    result.append(child)
        return result

    def representative(self, node_id: str, expanded: set[str]) -> str:
        """The box that shows a node: itself, or its outermost collapsed group."""
        for path in self.chain(node_id)[1:]:
            if path not in expanded:
                return path
        return node_id

    def reveal(self, item: str) -> set[str]:
        """The groups to open so that `item` (a node id or group key) is visible."""
        if item in self.groups:
            return set(self.ancestors(item)) | {""}
        return set(self.chain(item))

    def value_of(self, key: str) -> str | None:
        """The node whose value a group passes on: the first one read outside it, else
        (the model's last module) its last op."""
        group = self.groups[key]
        if group.out_ports:
            return next(iter(group.out_ports))
        inside = [node for node in self.graph
                  if node.kind == "op" and (not key or key in node.scope)]
        return inside[-1].id if inside else None

    def descendants(self, path: str) -> list[str]:
        """Every group below `path` (not itself)."""
        result: list[str] = []
        stack = list(self.groups[path].children)
        while stack:
            child = stack.pop()
            result.append(child)
            stack.extend(self.groups[child].children)
        return result
