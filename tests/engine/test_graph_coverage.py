"""Every torchvision classification model graphs (a slow sweep: `pytest -m slow`)."""

from __future__ import annotations

import pytest
import torchvision

from engine.arch import build_model
from engine.graph import build_graph
from engine.graph.groups import GroupTree
from engine.graph.layout import GraphLayout

NAMES = sorted(torchvision.models.list_models(module=torchvision.models))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_torchvision_classifier_graphs(name):
    graph = build_graph(build_model(f"torchvision:{name}", meta=True))
    assert graph.outputs
    assert graph.inputs
    assert all(source in graph.nodes for node in graph for source in node.inputs)
    tree = GroupTree(graph)
    scene = GraphLayout(tree).arrange(tree.initial_expanded())
    assert scene.boxes
