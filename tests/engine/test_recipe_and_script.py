"""Recipes replay exactly; the exported script reproduces the state dict with plain torch."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from engine import EditError, FileError, Session
from engine.recipe import read_recipe, recipe_document, replay, write_recipe
from engine.script_export import export_script
from tests.conftest import ROOT
from tests.models import SmallCNN, TiedLM, seeded
from tests.snapshots import assert_same, assert_same_state_dict, snapshot


def imported_modules(source: str) -> set[str]:
    """Top-level packages a script imports."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add((node.module or "").split(".")[0])
    return found


def resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18()


def edit_resnet(session: Session, weights_file) -> None:
    session.apply({"op": "freeze", "targets": ["conv1", "bn1", "layer1"], "bn_eval": True})
    session.apply({"op": "init", "types": ["Conv2d"], "param": "weight",
                   "method": "kaiming_normal", "args": {"mode": "fan_out",
                                                        "nonlinearity": "relu"}})
    session.apply({"op": "init", "targets": ["layer2.0"], "method": "reset"})
    session.apply({"op": "init", "targets": ["layer3.*.bn*.weight"], "method": "constant",
                   "args": {"val": 0.5}})
    session.apply({"op": "replace_head", "num_classes": 10, "hidden": [32], "dropout": 0.2})
    session.apply({"op": "set", "target": "conv1.weight", "index": "0, 0, :2",
                   "expr": "x * (x.abs() >= 0.05) + randn_like(x)"})
    session.apply({"op": "set", "target": "bn1.bias", "value": 0.25})
    session.apply({"op": "set", "target": "layer1.0.bn1.weight", "from": "layer1.0.bn2.weight"})
    session.apply({"op": "scale", "targets": ["layer4.1.conv*.weight"], "value": 0.5})
    with session.group("Shrink layer4"):
        session.apply({"op": "add", "targets": ["layer4.0.bn1"], "value": 0.01})
        session.apply({"op": "replace", "target": "layer4.0.downsample.1",
                       "module": {"type": "Identity"}})
    session.apply({"op": "load", "path": str(weights_file), "include": ["layer2.*"]})
    session.apply({"op": "tie", "target": "layer1.1", "source": "layer1.0"})
    session.apply({"op": "init", "types": ["Linear"], "param": "weight", "method": "sparse",
                   "args": {"sparsity": 0.5}})


@pytest.fixture
def weights_file(tmp_path):
    torch.manual_seed(5)
    path = tmp_path / "other.safetensors"
    save_file(torchvision.models.resnet18().state_dict(), str(path))
    return path


def test_recipe_file_round_trip_and_replay_is_bit_exact(tmp_path, weights_file):
    session = Session(resnet())
    edit_resnet(session, weights_file)
    path = tmp_path / "recipe.json"
    write_recipe(path, session.recipe(), arch="torchvision:resnet18")
    document = json.loads(path.read_text())
    assert document["weightsmith_recipe"] == 1
    assert len(document["edits"]) == len(session.history.steps)
    fresh = Session(resnet())
    replay(fresh, read_recipe(path))
    assert_same_state_dict(session.model.state_dict(), fresh.model.state_dict())
    assert [p.requires_grad for p in session.model.parameters()] == \
        [p.requires_grad for p in fresh.model.parameters()]


def test_exported_script_reproduces_the_state_dict(tmp_path, weights_file):
    start = resnet()
    start_state = {k: v.clone() for k, v in start.state_dict().items()}
    session = Session(start)
    session.source = {"arch": "torchvision:resnet18"}
    edit_resnet(session, weights_file)
    script = tmp_path / "edits.py"
    script.write_text(export_script(session))
    assert imported_modules(script.read_text()) <= {"__future__", "copy", "sys", "torch",
                                                    "torchvision", "safetensors"}
    namespace = runpy.run_path(str(script))
    other = resnet()
    other.load_state_dict(start_state)
    namespace["apply_edits"](other)
    assert_same_state_dict(session.model.state_dict(), other.state_dict())
    assert [n for n, p in session.model.named_parameters() if p.requires_grad] == \
        [n for n, p in other.named_parameters() if p.requires_grad]
    assert other.layer1[1] is other.layer1[0]


def test_exported_script_runs_as_a_program(tmp_path):
    session = Session(seeded(SmallCNN))
    session.source = {"arch": f"{ROOT / 'tests' / 'models.py'}:SmallCNN"}
    session.apply({"op": "init", "targets": ["features.0"], "param": "weight",
                   "method": "xavier_uniform"})
    session.apply({"op": "replace_head", "num_classes": 3})
    weights = tmp_path / "start.pt"
    torch.save(seeded(SmallCNN).state_dict(), weights)
    script = tmp_path / "edits.py"
    script.write_text(export_script(session))
    output = tmp_path / "edited.pt"
    result = subprocess.run([sys.executable, str(script), str(weights), str(output)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert_same_state_dict(session.model.state_dict(),
                           torch.load(output, weights_only=True))


def test_script_of_tied_model_and_untie():
    session = Session(seeded(TiedLM))
    session.apply({"op": "untie", "target": "lm_head.weight"})
    session.apply({"op": "init", "targets": ["lm_head"], "method": "normal",
                   "args": {"std": 0.02}})
    namespace: dict = {}
    exec(compile(export_script(session), "edits.py", "exec"), namespace)
    other = seeded(TiedLM)
    namespace["apply_edits"](other)
    assert other.lm_head.weight is not other.embed.weight
    assert_same_state_dict(session.model.state_dict(), other.state_dict())


def test_replay_is_all_or_nothing():
    session = Session(seeded(SmallCNN))
    before = snapshot(session.model)
    with pytest.raises(EditError, match=r"edits\[1\]: init.targets"):
        replay(session, [{"op": "freeze", "targets": ["features"]},
                         {"op": "init", "targets": ["missing"], "method": "zeros"}])
    assert_same(before, snapshot(session.model))


def test_bad_recipe_files(tmp_path):
    missing = tmp_path / "none.json"
    with pytest.raises(FileError, match="no such file"):
        read_recipe(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(FileError, match="not valid JSON"):
        read_recipe(broken)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"edits": []}))
    with pytest.raises(EditError, match="not a recipe"):
        read_recipe(other)
    future = tmp_path / "future.json"
    future.write_text(json.dumps(recipe_document([]) | {"weightsmith_recipe": 9}))
    with pytest.raises(EditError, match="version 9"):
        read_recipe(future)


def test_script_export_refuses_what_it_cannot_write():
    session = Session(checkpoint={"w": torch.zeros(2)})
    with pytest.raises(EditError, match="export script"):
        export_script(session)
