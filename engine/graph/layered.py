"""One layered (Sugiyama) layout, by OGDF's SugiyamaLayout (the `ogdf-py` bindings).

Chosen by measurement over grandalf, graphviz's `dot` (graphviz-pure, the one wheel
that ships a `dot` for Linux) and igraph: see docs/benchmarks/graph.md. OGDF takes
node sizes, routes edges with bends, is deterministic and lays out the 2,100 ops of
a flat 32-block language model in about 1 s (the others: 3 s to minutes).

The bindings give node coordinates but no getter for edge bends; the bends are read
back from OGDF's own SVG drawing of the same attributes, whose edges come in the
graph's edge order, one path each.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .model import GraphError

Point = tuple[float, float]
_PATH = re.compile(r'<path fill="none" d="([^"]*)"')
_NUMBER_PAIR = re.compile(r"(-?[\d.]+(?:e-?\d+)?),(-?[\d.]+(?:e-?\d+)?)")


@dataclass
class LayeredResult:
    """Centres of the nodes and the polyline of each edge (from its source's centre)."""

    centers: dict[Hashable, Point]
    routes: list[list[Point]]


def layered_layout(nodes: Sequence[tuple[Hashable, float, float]],
                   edges: Sequence[tuple[Hashable, Hashable]]) -> LayeredResult:
    """Lay `nodes` (id, width, height) out in layers, top to bottom, `edges` between them.

    Raises
    ------
    GraphError : the layout library is missing
    """
    try:
        import ogdf
    except ImportError:
        raise GraphError("layout: the ogdf-py package is missing (pip install ogdf-py)") from None
    if not nodes:
        return LayeredResult({}, [[] for _ in edges])
    graph = ogdf.Graph()
    handles = {}
    for node_id, _, _ in nodes:
        handles[node_id] = graph.new_node()
    for source, target in edges:
        graph.new_edge(handles[source], handles[target])
    attributes = ogdf.GraphAttributes(graph, ogdf.NODE_GRAPHICS | ogdf.EDGE_GRAPHICS)
    for node_id, width, height in nodes:
        attributes.set_width(handles[node_id], float(width))
        attributes.set_height(handles[node_id], float(height))
    layout = ogdf.SugiyamaLayout()
    # One crossing-minimization run: 5x faster than OGDF's default 15 on our levels,
    # for about one crossing more on a 40-box level (docs/benchmarks/graph.md).
    layout.set_runs(1)
    layout.set_fails(1)
    layout.call(attributes)
    centers = {node_id: (attributes.x(handle), attributes.y(handle))
               for node_id, handle in handles.items()}
    routes: list[list[Point]] = []
    if edges:
        for text in _PATH.findall(ogdf.to_svg(attributes)):
            points: list[Point] = []
            for x, y in _NUMBER_PAIR.findall(text):
                point = (float(x), float(y))
                if not points or points[-1] != point:
                    points.append(point)
            routes.append(points)
        if len(routes) != len(edges):
            raise GraphError(f"layout: OGDF drew {len(routes)} edges of {len(edges)}")
    return LayeredResult(centers, routes)

