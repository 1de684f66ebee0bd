"""`train` on the command line: report as text or JSON, --output, exit statuses, errors."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from safetensors.torch import load_file

from cli.commands.train import ctrl_c_stops
from cli.main import main
from engine.demo import ARCH_SPEC, WEIGHTS_FILE
from engine.progress import Progress

DEMO = ["--arch", ARCH_SPEC, "--weights", str(WEIGHTS_FILE)]
FINETUNE = {"weightsmith_recipe": 1, "edits": [
    {"op": "freeze", "targets": ["features"], "bn_eval": True},
    {"op": "replace_head", "num_classes": 10, "seed": 3},
]}


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "finetune.json"
    path.write_text(json.dumps(FINETUNE))
    return path


def test_finetune_the_demo_and_write_the_weights(tmp_path, recipe, capsys):
    output = tmp_path / "trained.safetensors"
    status = main(["train", *DEMO, "--recipe", str(recipe), "--data", "demo", "--steps", "30",
                   "--lr", "0.01", "--lr-mult", "classifier.4=10", "--seed", "0",
                   "--output", str(output), "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(captured.out)
    assert report["passed"] is True
    assert report["steps"] == 30
    assert report["loss_end"] < report["loss_start"]
    assert report["frozen_changed"] == []
    assert [g["lr"] for g in report["param_groups"]] == [0.01, pytest.approx(0.1)]
    assert report["output"] == str(output)
    written = load_file(str(output))
    original = load_file(str(WEIGHTS_FILE))
    for name, tensor in original.items():
        if name.startswith("features."):
            assert torch.equal(written[name], tensor), f"frozen {name} changed"
    assert not torch.equal(written["classifier.1.weight"], original["classifier.1.weight"])


def test_text_report(capsys):
    status = main(["train", *DEMO, "--data", "synthetic", "--steps", "4", "--seed", "0",
                   "--quiet"])
    out = capsys.readouterr().out
    assert status in (0, 1)  # whether 4 steps lower the loss is the report's business
    assert out.startswith("Test training: 4 steps on cpu (fp32)")
    assert "frozen tensors bit-identical" in out
    assert ("FAIL" in out) == (status == 1)


def test_a_failed_check_exits_with_status_1_and_valid_json(capsys):
    status = main(["train", *DEMO, "--data", "demo", "--steps", "50", "--optimizer", "sgd",
                   "--lr", "1e30", "--seed", "0", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["passed"] is False
    assert report["stop_reason"].startswith("loss became")


def test_input_opens_a_checkpoint_file(tmp_path, capsys):
    status = main(["train", "--input", str(WEIGHTS_FILE), "--arch", ARCH_SPEC, "--data", "demo",
                   "--steps", "3", "--seed", "0", "--json"])
    captured = capsys.readouterr()
    assert status in (0, 1), captured.err
    assert json.loads(captured.out)["steps"] == 3


@pytest.mark.parametrize(("arguments", "message"), [
    (["--data", "nowhere.npz"], "error: nowhere.npz: no such file or folder"),
    (["--data", "demo", "--batch-size", "0"], "error: --batch-size: must be >= 1, got 0"),
    (["--data", "demo", "--lr-mult", "fc"], "error: --lr-mult: expected NAME=X"),
    (["--data", "demo", "--lr-mult", "nothing=2"], "error: train.lr_multipliers: 'nothing'"),
    (["--data", "synthetic", "--input-shape", "3,a"], "error: --input-shape: expected"),
    (["--data", "synthetic", "--input-shape", "5"], "error: train.input_shape: input shape [5]"),
    (["--data", "demo", "--device", "tpu"], "error: --device: expected auto, cpu, cuda"),
    (["--data", "demo", "--precision", "fp16", "--device", "cpu"],
     "error: train.precision: fp16 needs a CUDA device"),
    (["--data", "demo", "--output", "/no/such/folder/x.safetensors"],
     "error: --output: folder /no/such/folder does not exist"),
])
def test_bad_arguments_give_one_line_and_status_2(tmp_path, monkeypatch, capsys, arguments,
                                                  message):
    monkeypatch.chdir(tmp_path)
    status = main(["train", *DEMO, *arguments])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_argparse_conflicts_exit_with_status_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", *DEMO, "--data", "demo", "--steps", "2", "--epochs", "1"])
    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_first_ctrl_c_stops_the_run_instead_of_interrupting(capsys):
    progress = Progress()
    with ctrl_c_stops(progress):
        signal.raise_signal(signal.SIGINT)
        assert progress.cancelled
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert "stopping after this step" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
