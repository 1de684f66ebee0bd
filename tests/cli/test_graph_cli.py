"""`graph`: the documented JSON schema, DOT and SVG, depth, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
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


# ---------------------------------------------------------------------- hostile input
class _Evil:
    """Unpickling this creates a file: the proof that code from the file ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("style", ["state dict", "whole file"])
def test_a_file_that_would_run_code_is_refused_in_one_line(style, tmp_path, capsys):
    from tests.models import SmallCNN, seeded

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if style == "state dict":  # weights with a payload beside them, with an architecture
        torch.save({**seeded(SmallCNN).state_dict(), "extra": _Evil(str(marker))}, path)
        args = [str(path), "--arch", f"{MODELS_FILE}:SmallCNN"]
    else:
        torch.save(_Evil(str(marker)), path)
        args = [str(path)]
    out = tmp_path / "g.json"
    assert main(["graph", *args, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {path}: refused")
    assert "io.open" in err
    assert "--trust" in err
    assert not marker.exists()
    assert not out.exists()


def test_a_folder_whose_config_needs_remote_code_is_refused(tmp_path, capsys):
    pytest.importorskip("transformers")
    from tests.engine.test_code_trust import custom_code_folder

    folder, marker = tmp_path / "model", tmp_path / "ran.txt"
    custom_code_folder(folder, marker)
    assert main(["graph", str(folder), "--arch", "hf", "--json", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "needs remote code (configuration_evil.py, modeling_evil.py)" in err
    assert not marker.exists()


@pytest.mark.parametrize("shape", ["3,100000,100000", "3,99999999999999999999,5"])
def test_a_huge_input_shape_is_refused_before_anything_is_built(shape, tmp_path, capsys,
                                                                 monkeypatch):
    import cli.commands.graph as command

    def never(*args, **kwargs):
        raise AssertionError("the model was opened")

    monkeypatch.setattr(command, "open_document", never)
    out = tmp_path / "g.json"
    assert main(["graph", "--arch", "torchvision:resnet18", "--input-shape", shape,
                 "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--input-shape: a sample of" in err
    assert "is too large (at most 268,435,456)" in err
    assert not out.exists()


def test_a_huge_shape_from_the_api_is_refused_without_allocating():
    from engine.graph import GraphError, build_graph
    from tests.models import SmallCNN, seeded

    with pytest.raises(GraphError, match=r"input_shape: a sample of 30,000,000,000 elements"):
        build_graph(seeded(SmallCNN), input_shape=(3, 100_000, 100_000))
    with pytest.raises(GraphError, match="input_shape: expected positive sizes"):
        build_graph(seeded(SmallCNN), input_shape=(3, True, 5))


def test_a_shape_within_the_limit_allocates_nothing_on_the_meta_device():
    # 3 x 8192 x 8192 floats are 805 MB if made; traced on the meta twin, nothing is.
    # A fresh process, so that its peak memory is this graph's alone.
    code = (
        "import resource, sys, torch\n"
        "from engine.graph import build_graph\n"
        "with torch.device('meta'):\n"
        "    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),"
        " torch.nn.Flatten(), torch.nn.Linear(4, 2))\n"
        "build_graph(model, input_shape=(3, 32, 32))  # export's own first-call memory\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "graph = build_graph(model, input_shape=(3, 8192, 8192))\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(graph.method, graph.nodes['input:input'].shape, grown)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    method, rest = result.stdout.split(" ", 1)
    shape, grown_kb = rest.rsplit(" ", 1)
    assert method == "export"
    assert shape == "(1, 3, 8192, 8192)"
    assert int(grown_kb) < 100_000, f"peak memory grew by {grown_kb} KB (805 MB if made)"


def test_a_depth_beyond_the_model_is_the_whole_graph_at_once(capsys):
    deep = graph_json(capsys, "--arch", f"{MODELS_FILE}:SmallCNN", "--depth", str(10**9))
    full = graph_json(capsys, "--arch", f"{MODELS_FILE}:SmallCNN")
    assert deep == full
