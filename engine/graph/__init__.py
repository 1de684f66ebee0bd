"""The dataflow graph of a model, grouped by module, laid out for drawing. Qt-free.

`build_graph(model)` traces the model (torch.export, then torch.fx, then a watched
forward pass) into a `Graph` of nodes with stable ids; `GroupTree` groups the nodes by
the module they ran in; `GraphLayout` lays out the visible part for a set of expanded
groups; `serialize` writes JSON, DOT and SVG. See docs/graph.md.
"""

from __future__ import annotations

from .build import MAX_INPUT_ELEMENTS, METHODS, build_graph, check_input_shape
from .model import Graph, GraphError, Node

__all__ = ["MAX_INPUT_ELEMENTS", "METHODS", "Graph", "GraphError", "Node", "build_graph",
           "check_input_shape"]
