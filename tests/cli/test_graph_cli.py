"""`graph`: the documented JSON schema, DOT and SVG, depth, and one-line errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest
import torch

from cli.main import main
from tests.conftest import ROOT

MODELS_FILE = ROOT / "tests" / "models.py"
NODE_KEYS = {"id", "op", "module", "shape", "dtype"}


def graph_json(capsys, *args: str) -> dict:
    assert main(["graph", *args, "--json", "-"]) == 0
    return json.loads(capsys.readouterr().out)


def check_schema(document: dict) -> None:
    assert set(document) == {"nodes", "edges", "inputs", "outputs"}
    ids = [node["id"] for node in document["nodes"]]
    assert len(ids) == len(set(ids))
    for node in document["nodes"]:
        assert set(node) == NODE_KEYS
        assert isinstance(node["id"], str)
        assert isinstance(node["op"], str)
        assert isinstance(node["module"], str)
        assert node["shape"] is None or all(isinstance(size, int) for size in node["shape"])
        assert node["dtype"] is None or isinstance(node["dtype"], str)
    for edge in document["edges"]:
        assert set(edge) == {"from", "to"}
        assert edge["from"] in ids
        assert edge["to"] in ids
    assert set(document["inputs"]) <= set(ids)
    assert set(document["outputs"]) <= set(ids)


def test_json_of_a_torchvision_model_follows_the_schema(capsys):
    document = graph_json(capsys, "--arch", "torchvision:resnet18")
    check_schema(document)
    nodes = {node["id"]: node for node in document["nodes"]}
    assert nodes["layer1.0#0"]["op"] == "add_"
    assert nodes["layer1.0#0"]["module"] == "layer1.0"
    assert nodes["conv1.weight"] == {"id": "conv1.weight", "op": "parameter", "module": "conv1",
                                     "shape": [64, 3, 7, 7], "dtype": "float32"}
    assert nodes["#0"]["module"] == ""
    assert nodes["#0"]["op"] == "flatten"
    readers = [edge["from"] for edge in document["edges"] if edge["to"] == "layer1.0#0"]
    assert len(readers) == 2
    assert document["inputs"] == ["input:x"]
    assert document["outputs"] == ["fc#0"]


def test_depth_closes_groups_and_tied_weights_show_two_uses(capsys):
    document = graph_json(capsys, "--arch", f"{MODELS_FILE}:TiedLM", "--depth", "1")
    check_schema(document)
    ids = [node["id"] for node in document["nodes"]]
    assert ids == ["input:tokens", "embed", "block", "lm_head"]
    assert {"from": "embed", "to": "lm_head"} in document["edges"]  # the shared weight
    full = graph_json(capsys, "--arch", f"{MODELS_FILE}:TiedLM")
    check_schema(full)
    uses = [edge["to"] for edge in full["edges"] if edge["from"] == "embed.weight"]
    assert uses == ["embed#0", "lm_head#0"]
    assert "lm_head.weight" not in {node["id"] for node in full["nodes"]}


def test_a_checkpoint_with_its_architecture_graphs(tmp_path, capsys):
    from tests.models import SmallCNN, seeded

    path = tmp_path / "cnn.pt"
    torch.save(seeded(SmallCNN).state_dict(), path)
    document = graph_json(capsys, str(path), "--arch", f"{MODELS_FILE}:SmallCNN", "--depth", "2")
    check_schema(document)
    assert "features.0" in {node["id"] for node in document["nodes"]}


def test_dot_and_svg_are_written_atomically_and_parse(tmp_path, capsys):
    dot = tmp_path / "g.dot"
    svg = tmp_path / "g.svg"
    assert main(["graph", "--arch", f"{MODELS_FILE}:SmallCNN", "--dot", str(dot)]) == 0
    text = dot.read_text()
    assert text.startswith("digraph model {")
    assert text.rstrip().endswith("}")
    assert 'subgraph "cluster_features"' in text
    assert '"features.0#0"' in text
    assert main(["graph", "--arch", f"{MODELS_FILE}:SmallCNN", "--depth", "1",
                 "--svg", str(svg)]) == 0
    root = ElementTree.fromstring(svg.read_text())
    assert root.tag.endswith("svg")
    texts = {element.text for element in root.iter() if element.tag.endswith("text")}
    assert {"features", "classifier"} <= texts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot", "g.svg"]
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--arch", f"{MODELS_FILE}:Nope"], "defines no 'Nope'"),
    (["--arch", "torchvision:resnet18", "--depth", "0"], "--depth: expected 1 or more"),
    (["--arch", "torchvision:resnet18", "--input-shape", "0,3"], "--input-shape"),
])
def test_bad_input_is_one_line_with_status_2(args, message, capsys, tmp_path):
    out = tmp_path / "g.json"
    assert main(["graph", *args, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert message in err
    assert not out.exists()


def test_an_untraceable_model_names_why(tmp_path, capsys):
    model_file = tmp_path / "broken.py"
    model_file.write_text(
        "import torch\n"
        "class Broken(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = torch.nn.Linear(3, 3)\n"
        "    def forward(self, x):\n"
        "        raise ValueError('not today')\n")
    out = tmp_path / "g.json"
    assert main(["graph", "--arch", f"{model_file}:Broken", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot be traced" in err
    assert "not today" in err
    assert not out.exists()
