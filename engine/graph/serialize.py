"""The graph as JSON, DOT or SVG, whole or with groups closed below a depth.

JSON is `{"nodes": [{"id", "op", "module", "shape", "dtype"}], "edges": [{"from",
"to"}], "inputs": [ids], "outputs": [ids]}` (docs/graph.md). With groups closed, a
closed group is one node: its id and module are its path, its op its module type,
its shape and dtype those of the first value it passes on.
"""

from __future__ import annotations

import itertools
from html import escape
from typing import Any

from .groups import GroupTree
from .layout import GraphLayout, Scene, group_label, node_label, shape_text


def expanded_to_depth(tree: GroupTree, depth: int | None) -> set[str]:
    """The groups open when groups `depth` levels down are shown closed (None: all open).

    `depth=1` shows the top-level children as closed boxes.
    """
    if depth is None:
        return set(tree.groups)
    return {key for key, group in tree.groups.items() if group.depth < depth}


def visible_json(tree: GroupTree, expanded: set[str]) -> dict[str, Any]:
    """The documented JSON of the graph as shown with `expanded` groups open."""
    graph = tree.graph
    if set(tree.groups) <= expanded:
        return graph.to_json()
    shown = tree.visible_items(expanded)
    order = {node_id: position for position, node_id in enumerate(graph.nodes)}
    nodes = []

    def position(item: str) -> int:
        # A closed group sorts where its first node ran.
        return order[item] if item in order else order.get(_first(tree, item) or "", 0)

    for item in sorted(shown, key=position):
        if item in tree.groups:
            value = tree.value_of(item)
            node = graph.nodes.get(value) if value is not None else None
            nodes.append({"id": item, "op": tree.groups[item].type,
                          "module": tree.groups[item].module,
                          "shape": None if node is None or node.shape is None
                          else list(node.shape),
                          "dtype": None if node is None else node.dtype})
        else:
            node = graph.nodes[item]
            nodes.append({"id": node.id, "op": node.op, "module": node.module,
                          "shape": None if node.shape is None else list(node.shape),
                          "dtype": node.dtype})
    edges = []
    seen: set[tuple[str, str]] = set()
    for source, target in graph.edges():
        pair = (tree.representative(source, expanded), tree.representative(target, expanded))
        if pair[0] != pair[1] and pair not in seen:
            seen.add(pair)
            edges.append({"from": pair[0], "to": pair[1]})
    return {"nodes": nodes, "edges": edges,
            "inputs": list(dict.fromkeys(tree.representative(i, expanded)
                                         for i in graph.inputs)),
            "outputs": list(dict.fromkeys(tree.representative(o, expanded)
                                          for o in graph.outputs))}


def _first(tree: GroupTree, path: str) -> str | None:
    group = tree.groups[path]
    while not group.nodes and group.children:
        group = tree.groups[group.children[0]]
    return group.nodes[0] if group.nodes else None


def to_dot(tree: GroupTree, expanded: set[str]) -> str:
    """Graphviz DOT text: open groups as clusters, closed ones and nodes as boxes."""
    graph = tree.graph
    lines = ["digraph model {", "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def emit(path: str, indent: str) -> None:
        group = tree.groups[path]
        for node_id in group.nodes:
            node = graph.nodes[node_id]
            label = node_label(node) + (f"\\n{shape_text(node.shape)}" if node.shape else "")
            style = ', style=rounded' if node.is_tensor else ""
            lines.append(f"{indent}{quoted(node_id)} [label={quoted(label)}{style}];")
        for child in group.children:
            if child in expanded:
                name, kind = group_label(tree.groups[child])
                lines.append(f"{indent}subgraph {quoted('cluster_' + child)} {{")
                lines.append(f"{indent}  label={quoted(f'{name} · {kind}')};")
                emit(child, indent + "  ")
                lines.append(f"{indent}}}")
            else:
                name, kind = group_label(tree.groups[child])
                label = quoted(name + "\\n" + kind)
                lines.append(f"{indent}{quoted(child)} [label={label}, style=filled, "
                             "fillcolor=lightgrey];")

    emit("", "  ")
    for edge in visible_json(tree, expanded)["edges"]:
        lines.append(f"  {quoted(edge['from'])} -> {quoted(edge['to'])};")
    lines.append("}")
    return "\n".join(lines) + "\n"


#: colours of the SVG drawing, one per box kind
_FILL = {"op": "#e8f0fe", "input": "#e6f4ea", "parameter": "#fef7e0", "buffer": "#fce8e6",
         "constant": "#f1f3f4", "group": "#eceff1", "frame": "none"}


def scene_svg(tree: GroupTree, scene: Scene, *, labels: bool = True) -> str:
    """An SVG drawing of a laid-out scene (frames, boxes, edges, optional shape labels)."""
    margin = 10.0
    width, height = scene.width + 2 * margin, scene.height + 2 * margin
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="{-margin:.0f} {-margin:.0f} {width:.0f} '
           f'{height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
           'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5f6368"/>'
           "</marker></defs>"]
    for box in sorted(scene.frames.values(), key=lambda b: b.depth):
        name, kind = group_label(tree.groups[box.id])
        out.append(f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
                   f'height="{box.height:.1f}" rx="6" fill="#fafafa" fill-opacity="0.6" '
                   'stroke="#9aa0a6" stroke-dasharray="4 2"/>')
        out.append(f'<text x="{box.x + 8:.1f}" y="{box.y + 15:.1f}" fill="#3c4043">'
                   f"{escape(name)} · {escape(kind)}</text>")
    for route in scene.routes:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in route.points)
        out.append(f'<polyline points="{points}" fill="none" stroke="#5f6368" '
                   'stroke-width="1" marker-end="url(#arrow)"/>')
        node = tree.graph.nodes.get(route.value)
        if labels and node is not None and node.shape and len(route.points) >= 2:
            x, y = _middle(route.points)
            out.append(f'<text x="{x + 3:.1f}" y="{y:.1f}" font-size="9" fill="#80868b">'
                       f"{escape(shape_text(node.shape))}</text>")
    for box in scene.boxes.values():
        fill = _FILL.get(box.kind, "#ffffff")
        rx = 10 if box.kind in ("parameter", "buffer", "constant") else 4
        out.append(f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
                   f'height="{box.height:.1f}" rx="{rx}" fill="{fill}" stroke="#5f6368"/>')
        cx, cy = box.center
        if box.kind == "group":
            name, kind = group_label(tree.groups[box.id])
            out.append(f'<text x="{cx:.1f}" y="{cy - 3:.1f}" text-anchor="middle" '
                       f'font-weight="bold">{escape(name)}</text>')
            out.append(f'<text x="{cx:.1f}" y="{cy + 11:.1f}" text-anchor="middle" '
                       f'font-size="10" fill="#5f6368">{escape(kind)}</text>')
        else:
            text = node_label(tree.graph.nodes[box.id])
            out.append(f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle">'
                       f"{escape(text)}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _middle(points: list[tuple[float, float]]) -> tuple[float, float]:
    """The point halfway along a polyline."""
    lengths = [((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
               for (x1, y1), (x2, y2) in itertools.pairwise(points)]
    half = sum(lengths) / 2
    for (x1, y1), (x2, y2), length in zip(points, points[1:], lengths, strict=False):
        if half <= length and length > 0:
            t = half / length
            return x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
        half -= length
    return points[len(points) // 2]


def svg_of(tree: GroupTree, expanded: set[str], layout: GraphLayout | None = None) -> str:
    """Lay out and draw the graph as shown with `expanded` groups open."""
    layout = layout or GraphLayout(tree)
    return scene_svg(tree, layout.arrange(expanded))
