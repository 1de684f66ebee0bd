"""CLI of the engine issue: `apply` and `inspect --arch`, and one-line errors with status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from tests.conftest import ROOT

MODELS_FILE = ROOT / "tests" / "models.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_apply_writes_safetensors_with_ties_stored_once(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "init", "targets": ["block"], "method": "zeros"},
        {"op": "freeze", "targets": ["embed"]}]}))
    output = tmp_path / "out.safetensors"
    result = run("apply", str(recipe), "--arch", f"{MODELS_FILE}:TiedLM", "--output", str(output),
                 "--ties", "once")
    assert result.returncode == 0, result.stderr
    assert "ties: 1 group stored once" in result.stdout
    with safe_open(str(output), "pt") as handle:
        keys = set(handle.keys())
        metadata = handle.metadata()
        assert torch.all(handle.get_tensor("block.0.weight") == 0)
    assert "lm_head.weight" not in keys
    assert "embed.weight" in keys
    assert json.loads(metadata["weightsmith.aliases"]) == {"lm_head.weight": "embed.weight"}


def test_apply_writes_pt_and_matches_replay_in_process(tmp_path):
    from engine.opening import open_model
    from engine.recipe import replay

    edits = [{"op": "replace_head", "num_classes": 3, "seed": 5},
             {"op": "init", "types": ["Conv2d"], "param": "weight", "method": "kaiming_uniform",
              "seed": 9}]
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": edits}))
    output = tmp_path / "out.pt"
    result = run("apply", str(recipe), "--arch", f"{MODELS_FILE}:SmallCNN", "--arch-args",
                 '{"num_classes": 4}', "--output", str(output))
    assert result.returncode == 0, result.stderr
    session = open_model(f"{MODELS_FILE}:SmallCNN", {"num_classes": 4})
    replay(session, edits)
    written = torch.load(output, weights_only=True)
    expected = session.model.state_dict()
    assert list(written) == list(expected)
    assert all(torch.equal(written[k], expected[k]) for k in expected)


def test_inspect_json_lists_every_tensor_and_totals():
    result = run("inspect", "--arch", f"{MODELS_FILE}:TiedLM", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    names = [tensor["name"] for tensor in listing["tensors"]]
    assert names[0] == "embed.weight"
    assert "lm_head.weight" in names
    lm_head = next(t for t in listing["tensors"] if t["name"] == "lm_head.weight")
    assert lm_head == {"name": "lm_head.weight", "shape": [11, 5], "dtype": "float32",
                       "numel": 55, "requires_grad": True, "kind": "parameter", "tie_group": 0}
    assert listing["tie_groups"] == [["embed.weight", "lm_head.weight"]]
    assert listing["totals"]["parameters"] == 11 * 5 + 5 * 5 + 5 + 5 + 5  # embed stored once


def test_inspect_table_for_torchvision():
    result = run("inspect", "--arch", "torchvision:resnet18", "--arch-args",
                 '{"num_classes": 7}')
    assert result.returncode == 0, result.stderr
    assert "fc.weight" in result.stdout
    assert "7x512" in result.stdout
    assert "11,180,103 parameters" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["inspect", "--arch", "torchvision:nope"], "torchvision has no model 'nope'"),
    (["inspect", "--arch", "nothing"], "is not a spec"),
    (["inspect", "--arch", "torchvision:resnet18", "--arch-args", "{bad"], "--arch-args"),
    (["inspect", "--arch", "torchvision:resnet18", "--arch-args", '{"colour": 1}'],
     "arch-args"),
    (["inspect", "--arch", "/no/file.py:Net"], "no such file"),
    (["apply", "/no/recipe.json", "--arch", "torchvision:resnet18", "--output", "o.pt"],
     "no such file"),
    (["apply", "r.json", "--arch", "torchvision:resnet18"], "--output"),
])
def test_errors_are_one_line_with_status_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_a_failing_recipe_names_the_edit_and_writes_nothing(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "freeze", "targets": ["fc1"]}, {"op": "set", "target": "fc1.weight",
                                               "expr": "open('x')"}]}))
    output = tmp_path / "out.pt"
    result = run("apply", str(recipe), "--arch", f"{MODELS_FILE}:MLP", "--output", str(output))
    assert result.returncode == 2
    assert "edits[1]: set.expr" in result.stderr
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [recipe]


def test_debug_shows_the_traceback():
    result = run("inspect", "--arch", "torchvision:nope", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_script_command_writes_a_script_that_reproduces_apply(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "init", "targets": ["fc1"], "param": "weight", "method": "orthogonal"},
        {"op": "replace", "target": "fc2", "module": {"type": "Linear", "out_features": 2}}]}))
    arch = f"{MODELS_FILE}:MLP"
    script = tmp_path / "edits.py"
    result = run("script", str(recipe), "--arch", arch, "--output", str(script))
    assert result.returncode == 0, result.stderr
    applied = tmp_path / "applied.pt"
    assert run("apply", str(recipe), "--arch", arch, "--output", str(applied)).returncode == 0
    scripted = tmp_path / "scripted.pt"
    # The recipe has no seeds: the CLI draws them from a generator it seeds with 0, so
    # `apply` and `script` draw the same ones. Without weights the script builds the
    # model from the recorded arch under seed 0, as Weightsmith does.
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import runpy, sys, torch\n"
        f"ns = runpy.run_path({str(script)!r})\n"
        "model = ns['build_model']()\n"
        "ns['apply_edits'](model)\n"
        f"torch.save(model.state_dict(), {str(scripted)!r})\n")
    finished = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr
    expected = torch.load(applied, weights_only=True)
    got = torch.load(scripted, weights_only=True)
    assert list(expected) == list(got)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_weights_are_read_like_every_file(tmp_path):
    from tests.models import MLP, seeded

    state = {f"module.{k}": v for k, v in seeded(MLP, seed=3).state_dict().items()}
    weights = tmp_path / "ddp.pt"
    torch.save(state, weights)
    result = run("inspect", "--arch", f"{MODELS_FILE}:MLP", "--weights", str(weights), "--json")
    assert result.returncode == 0, result.stderr
    names = [tensor["name"] for tensor in json.loads(result.stdout)["tensors"]]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    torch.save({"fc1.weight": torch.zeros(2, 2)}, weights)
    result = run("inspect", "--arch", f"{MODELS_FILE}:MLP", "--weights", str(weights))
    assert result.returncode == 2
    assert str(weights) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
