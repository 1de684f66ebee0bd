"""Lay out the visible graph for a set of open groups, one group at a time, with a cache.

Each open group is laid out on its own (`engine.graph.layered`): its direct nodes, its
child groups (a closed one as a box, an open one as a frame as large as its own
layout), and a port for each value entering or leaving it. A frame's layout depends
only on its inside and on which groups inside it are open, so it is cached under
exactly that: opening one block lays out that block and its ancestors, nothing else,
and a graph rebuilt after an edit reuses every group whose inside did not change.

An edge of the graph is drawn through the groups it crosses: out of each open group
on its source's side through that group's out-port, across the lowest group holding
both ends, and into each open group on its target's side through an in-port.
Coordinates are in layout units (a pixel at 100%), y downwards, boxes by top-left.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from .groups import Group, GroupTree
from .layered import Point, layered_layout
from .model import Node

#: sizes in layout units
OP_HEIGHT = 26.0
TENSOR_HEIGHT = 20.0
GROUP_HEIGHT = 40.0
CHAR_WIDTH = 7.5
SMALL_CHAR_WIDTH = 7.0
HEADER = 22.0
PAD = 12.0
PORT = 2.0


def shape_text(shape: tuple[int, ...] | None) -> str:
    """`(1, 64, 32, 32)` -> `1×64×32×32`; a scalar is `scalar`; None is ""."""
    if shape is None:
        return ""
    return "×".join(str(size) for size in shape) if shape else "scalar"


def node_label(node: Node) -> str:
    """The text a node's box shows: the op, an input's name, a tensor's last name part."""
    if node.kind == "input":
        return node.target or node.id.partition(":")[2]
    if node.is_tensor:
        return node.id.rpartition(".")[2] if node.kind != "constant" else node.target
    return node.op


def node_size(node: Node) -> tuple[float, float]:
    """Width and height of a node's box."""
    label = node_label(node)
    if node.is_tensor:
        return max(44.0, SMALL_CHAR_WIDTH * len(label) + 16), TENSOR_HEIGHT
    return max(56.0, CHAR_WIDTH * len(label) + 20), OP_HEIGHT


def group_label(group: Group) -> tuple[str, str]:
    """The two lines of a closed group's box: its name and its type (with repeats)."""
    kind = group.type
    if group.call:
        kind += f", call {group.call + 1}"
    if group.repeats > 1:
        kind += f" ×{group.repeats}"
    elif group.identical_to is not None:
        kind += " (same)"
    return group.module.rpartition(".")[2] or "model", kind


def group_size(group: Group) -> tuple[float, float]:
    """Width and height of a closed group's box."""
    name, kind = group_label(group)
    return max(70.0, CHAR_WIDTH * len(name) + 24, SMALL_CHAR_WIDTH * len(kind) + 24), GROUP_HEIGHT


@dataclass
class Level:
    """The layout of one open group, relative to its frame's top-left corner."""

    width: float
    height: float
    centers: dict[str, Point]
    sizes: dict[str, tuple[float, float]]
    in_ports: dict[str, Point]
    out_ports: dict[str, Point]
    routes: dict[tuple[Hashable, Hashable], list[Point]]


@dataclass
class Box:
    """A drawn rectangle: a node, a closed group, or an open group's frame."""

    id: str
    kind: str  # a node kind, "group" (closed) or "frame" (open)
    x: float
    y: float
    width: float
    height: float
    depth: int = 0

    @property
    def center(self) -> Point:
        return self.x + self.width / 2, self.y + self.height / 2


@dataclass
class Route:
    """A drawn edge between two boxes, and the graph node whose value it carries."""

    source: str
    target: str
    points: list[Point]
    value: str


@dataclass
class Scene:
    """Everything to draw for one expansion: boxes, frames, edges, and the extent."""

    boxes: dict[str, Box] = field(default_factory=dict)
    frames: dict[str, Box] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


class GraphLayout:
    """Layouts of a GroupTree, cached per group and per open state of what is inside.

    Parameters
    ----------
    tree : the grouped graph
    cache : a cache to share with an earlier GraphLayout (a rebuilt graph reuses the
        layouts of the groups whose inside is unchanged)
    """

    def __init__(self, tree: GroupTree, cache: dict | None = None) -> None:
        self.tree = tree
        self.cache: dict = cache if cache is not None else {}
        self.computed = 0  # levels laid out (not taken from the cache), for tests

    # ------------------------------------------------------------------ levels
    def level(self, path: str, expanded: frozenset[str]) -> Level:
        """The layout of the open group `path`, its open descendants as in `expanded`."""
        group = self.tree.groups[path]
        inside = frozenset(key for key in expanded
                           if key != path and path in self.tree.ancestors(key))
        key = (path, group.signature, inside)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        level = self._lay_out(group, expanded)
        self.cache[key] = level
        self.computed += 1
        return level

    def _lay_out(self, group: Group, expanded: frozenset[str]) -> Level:
        graph = self.tree.graph
        sizes: dict[str, tuple[float, float]] = {}
        for node_id in group.nodes:
            sizes[node_id] = node_size(graph.nodes[node_id])
        for child in group.children:
            if child in expanded:
                inner = self.level(child, expanded)
                sizes[child] = (inner.width, inner.height)
            else:
                sizes[child] = group_size(self.tree.groups[child])
        nodes: list[tuple[Hashable, float, float]] = [(item, *sizes[item])
                                                       for item in group.items()]
        nodes += [(("in", source), PORT, PORT) for source in group.in_ports]
        nodes += [(("out", source), PORT, PORT) for source in group.out_ports]
        edges: list[tuple[Hashable, Hashable]] = list(group.edges)
        edges += [(("in", source), reader) for source, readers in group.in_ports.items()
                  for reader in readers]
        edges += [(item, ("out", source)) for source, item in group.out_ports.items()]
        result = layered_layout(nodes, edges)
        # Boxes by their edges, ports excluded: the frame fits the boxes.
        xs = [result.centers[item][0] - sizes[item][0] / 2 for item in group.items()]
        x2 = [result.centers[item][0] + sizes[item][0] / 2 for item in group.items()]
        ys = [result.centers[item][1] - sizes[item][1] / 2 for item in group.items()]
        y2 = [result.centers[item][1] + sizes[item][1] / 2 for item in group.items()]
        dx = PAD - min(xs)
        top = HEADER + (PAD if group.in_ports else 0)
        dy = top - min(ys)
        width = max(x2) - min(xs) + 2 * PAD
        height = max(y2) - min(ys) + top + PAD + (PAD if group.out_ports else 0)
        name, kind = group_label(group)
        width = max(width, CHAR_WIDTH * len(f"{name} · {kind}") + 2 * PAD)

        def moved(point: Point) -> Point:
            return point[0] + dx, point[1] + dy

        centers = {item: moved(result.centers[item]) for item in group.items()}
        in_ports = {source: (moved(result.centers[("in", source)])[0], HEADER)
                    for source in group.in_ports}
        out_ports = {source: (moved(result.centers[("out", source)])[0], height)
                     for source in group.out_ports}
        routes: dict[tuple[Hashable, Hashable], list[Point]] = {}
        for (source, target), points in zip(edges, result.routes, strict=True):
            path = [moved(point) for point in points]
            if isinstance(source, tuple):
                path = [in_ports[source[1]], *path[1:]]
            if isinstance(target, tuple):
                path = [*path[:-1], out_ports[target[1]]]
            routes[(source, target)] = path
        return Level(width, height, centers, sizes, in_ports, out_ports, routes)

    # ------------------------------------------------------------------ the scene
    def arrange(self, expanded: Iterable[str]) -> Scene:
        """Boxes, frames and routed edges for the open groups `expanded` (the root is
        always open; a group whose parent is closed is not shown, open or not)."""
        open_groups = frozenset(_reachable(self.tree, set(expanded) | {""}))
        scene = Scene()
        origins: dict[str, Point] = {"": (0.0, 0.0)}
        root = self.level("", open_groups)
        scene.width, scene.height = root.width, root.height
        stack = [""]
        while stack:
            path = stack.pop()
            level = self.level(path, open_groups)
            ox, oy = origins[path]
            depth = path.count(".") + 1 if path else 0
            for item, (cx, cy) in level.centers.items():
                width, height = level.sizes[item]
                x, y = ox + cx - width / 2, oy + cy - height / 2
                if item in self.tree.groups:
                    if item in open_groups:
                        scene.frames[item] = Box(item, "frame", x, y, width, height, depth + 1)
                        origins[item] = (x, y)
                        stack.append(item)
                    else:
                        scene.boxes[item] = Box(item, "group", x, y, width, height, depth + 1)
                else:
                    kind = self.tree.graph.nodes[item].kind
                    scene.boxes[item] = Box(item, kind, x, y, width, height, depth)
        scene.routes = self._routes(open_groups, origins)
        return scene

    def _routes(self, open_groups: frozenset[str], origins: dict[str, Point]) -> list[Route]:
        tree = self.tree
        routes: list[Route] = []
        seen: set[tuple] = set()
        for source, target in tree.graph.edges():
            shown_source = tree.representative(source, open_groups)
            shown_target = tree.representative(target, open_groups)
            if shown_source == shown_target:
                continue
            up = _holders(tree, shown_source)
            down = _holders(tree, shown_target)
            common = 0
            while common < min(len(up), len(down)) and up[common] == down[common]:
                common += 1
            lowest = up[common - 1]
            up_groups, down_groups = up[common:], down[common:]
            key = (shown_source, shown_target, source if up_groups or down_groups else None)
            if key in seen:
                continue
            seen.add(key)
            points: list[Point] = []
            # Out through the source side's open groups, innermost first ...
            inner: str = shown_source
            for group in reversed(up_groups):
                points += self._segment(group, inner, ("out", source), open_groups, origins)
                inner = group
            # ... across the lowest group holding both ...
            outer_target = down_groups[0] if down_groups else shown_target
            points += self._segment(lowest, inner, outer_target, open_groups, origins)
            # ... and in through the target side's, outermost first.
            for position, group in enumerate(down_groups):
                reader = down_groups[position + 1] if position + 1 < len(down_groups) \
                    else shown_target
                points += self._segment(group, ("in", source), reader, open_groups, origins)
            routes.append(Route(shown_source, shown_target, _simplified(points), source))
        return routes

    def _segment(self, path: str, source: Hashable, target: Hashable,
                 open_groups: frozenset[str], origins: dict[str, Point]) -> list[Point]:
        level = self.level(path, open_groups)
        points = level.routes.get((source, target))
        if points is None:
            return []
        # OGDF routes from a box's centre to the target's border; through an open
        # group the edge runs port to port instead, so those ends are dropped.
        if isinstance(source, str) and source in open_groups:
            points = points[1:]
        if isinstance(target, str) and target in open_groups:
            points = points[:-1]
        ox, oy = origins[path]
        return [(x + ox, y + oy) for x, y in points]


def _reachable(tree: GroupTree, expanded: set[str]) -> set[str]:
    """The open groups whose every ancestor is open too (the ones drawn open)."""
    result = {""}
    stack = [""]
    while stack:
        for child in tree.groups[stack.pop()].children:
            if child in expanded:
                result.add(child)
                stack.append(child)
    return result


def _holders(tree: GroupTree, item: str) -> list[str]:
    """The groups holding a shown item, root first (a group does not hold itself)."""
    return tree.ancestors(item) if item in tree.groups else tree.chain(item)


def _simplified(points: list[Point]) -> list[Point]:
    result: list[Point] = []
    for point in points:
        if not result or abs(result[-1][0] - point[0]) > 0.01 or \
                abs(result[-1][1] - point[1]) > 0.01:
            result.append(point)
    return result
