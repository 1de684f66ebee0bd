"""Exported scripts write what `apply` writes, in the format the output name asks for, and
carry the per-type init rules and the test training's parameter groups as plain code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torchvision
from safetensors.torch import load_file, save_file

from cli.main import main
from engine import Session
from engine.script_export import export_script
from engine.training import TrainConfig, Trainer
from tests.conftest import ROOT
from tests.models import SmallCNN, TiedLM, seeded

MODELS_FILE = ROOT / "tests" / "models.py"
RULES = [
    {"types": ["Conv2d"], "param": "weight", "method": "kaiming_normal",
     "args": {"mode": "fan_out", "nonlinearity": "relu"}},
    {"types": ["BatchNorm2d"], "param": "weight", "method": "constant", "args": {"val": 1}},
    {"types": ["BatchNorm2d"], "param": "bias", "method": "zeros"},
    {"types": ["Linear"], "param": "weight", "method": "normal", "args": {"std": 0.01}},
    {"types": ["Linear"], "param": "bias", "method": "zeros"},
]


def run_cli(capsys, *args: object) -> str:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def run_script(script, *args: object) -> None:
    result = subprocess.run([sys.executable, str(script), *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def assert_same_files(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert sorted(left) == sorted(right)
    for name, tensor in left.items():
        assert tensor.dtype == right[name].dtype, name
        assert torch.equal(tensor, right[name]), name


@pytest.fixture
def resnet_case(tmp_path):
    torch.manual_seed(1)
    weights = tmp_path / "start.safetensors"
    save_file(torchvision.models.resnet18().state_dict(), str(weights))
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "freeze", "targets": ["layer1"]},
        {"op": "init", "seed": 4, "rules": RULES},
        {"op": "replace_head", "num_classes": 7, "seed": 2},
        {"op": "cast", "targets": ["layer4"], "dtype": "float64"}]}))
    return weights, recipe


def test_script_output_equals_apply_output(tmp_path, capsys, resnet_case):
    weights, recipe = resnet_case
    arch = ["--arch", "torchvision:resnet18", "--weights", weights]
    run_cli(capsys, "script", recipe, *arch, "--output", tmp_path / "edits.py")
    text = (tmp_path / "edits.py").read_text()
    assert "def weight_init(m: nn.Module) -> None:" in text
    assert "    torch.manual_seed(4)\n    model.apply(weight_init)" in text
    for suffix in (".safetensors", ".pt"):
        run_cli(capsys, "apply", recipe, *arch, "--output", tmp_path / f"apply{suffix}")
        run_script(tmp_path / "edits.py", weights, tmp_path / f"script{suffix}")
        if suffix == ".safetensors":
            # The real loaders: safetensors' load_file, then torchvision's strict
            # load_state_dict.
            ours = load_file(str(tmp_path / "script.safetensors"))
            theirs = load_file(str(tmp_path / "apply.safetensors"))
        else:
            ours = torch.load(tmp_path / "script.pt", weights_only=True)
            theirs = torch.load(tmp_path / "apply.pt", weights_only=True)
        assert_same_files(ours, theirs)
        model = torchvision.models.resnet18(num_classes=7)
        model.layer4.double()
        model.load_state_dict(ours)


def test_script_safetensors_output_of_a_tied_model_loads_strictly(tmp_path):
    session = Session(seeded(TiedLM))
    session.source = {"arch": f"{MODELS_FILE}:TiedLM"}
    session.apply({"op": "init", "seed": 3, "rules": [
        {"types": ["Embedding"], "param": "weight", "method": "normal", "args": {"std": 0.2}}]})
    (tmp_path / "edits.py").write_text(export_script(session))
    run_script(tmp_path / "edits.py", "-", tmp_path / "out.safetensors")
    written = load_file(str(tmp_path / "out.safetensors"))
    model = TiedLM()
    model.load_state_dict(written)  # strict: every name is stored
    assert_same_files(written, session.model.state_dict())
    session.save(tmp_path / "apply.safetensors")
    assert_same_files(written, Session.open(tmp_path / "apply.safetensors").state_dict())


def test_script_reads_weights_in_only_when_given():
    session = Session(seeded(SmallCNN))
    text = export_script(session)
    assert "save_weights(model, output)" in text
    assert "torch.save(model.state_dict(), output)" not in text


# ----------------------------------------------------------------------------- optimizer
def test_make_optimizer_is_the_test_trainings_optimizer(tmp_path):
    session = Session(seeded(SmallCNN))
    session.apply({"op": "freeze", "targets": ["features.0"]})
    training = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.8, "weight_decay": 1e-4,
                "lr_multipliers": {"classifier": 10.0, "features.4": 0.5}}
    namespace: dict = {}
    exec(compile(export_script(session, training=training), "edits.py", "exec"), namespace)
    model = seeded(SmallCNN)
    namespace["apply_edits"](model)
    exported = namespace["make_optimizer"](model)
    reference = Trainer(session, TrainConfig.from_dict(training)).build_optimizer()
    names = {id(p): n for n, p in model.named_parameters()}
    names_reference = {id(p): n for n, p in session.model.named_parameters()}
    assert type(exported) is type(reference)
    assert len(exported.param_groups) == len(reference.param_groups) == 3
    for ours, theirs in zip(exported.param_groups, reference.param_groups, strict=True):
        assert [names[id(p)] for p in ours["params"]] == \
            [names_reference[id(p)] for p in theirs["params"]]
        for key in ("lr", "momentum", "weight_decay"):
            assert ours[key] == theirs[key], key
    # One step with the same gradients gives the same bits.
    for params in (list(model.parameters()), list(session.model.parameters())):
        generator = torch.Generator().manual_seed(0)
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator) if p.requires_grad else None
    exported.step()
    reference.step()
    for (name, ours), theirs in zip(model.state_dict().items(),
                                    session.model.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs), name


def test_script_command_takes_the_optimizer_settings(tmp_path, capsys):
    save_file(seeded(SmallCNN).state_dict(), str(tmp_path / "w.safetensors"))
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "freeze", "targets": ["features"]}]}))
    run_cli(capsys, "script", recipe, "--arch", f"{MODELS_FILE}:SmallCNN", "--weights",
            tmp_path / "w.safetensors", "--lr", "0.01", "--lr-mult", "classifier.2.bias=3",
            "--output", tmp_path / "edits.py")
    text = (tmp_path / "edits.py").read_text()
    assert "def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:" in text
    assert "'lr': 0.03}" in text
    assert "torch.optim.Adam(groups, lr=0.01" in text
    code = main(["script", str(recipe), "--arch", f"{MODELS_FILE}:SmallCNN", "--lr-mult",
                 "features=2", "--output", str(tmp_path / "bad.py")])
    err = capsys.readouterr().err
    assert code == 2
    assert "--lr-mult: 'features' selects only frozen parameters" in err
    assert not (tmp_path / "bad.py").exists()
