"""`export` on the command line: the report, JSON, one-line errors, atomic under kill -9."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from cli.main import build_parser, main
from engine.demo import ARCH_SPEC, WEIGHTS_FILE
from engine.export.options import missing_onnx_packages
from tests.conftest import ROOT

MODELS = ROOT / "tests" / "models.py"


def cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_the_demo_from_its_weights_file_as_torchscript(tmp_path, capsys):
    output = tmp_path / "digits.pt"
    code, out, err = cli(capsys, "export", WEIGHTS_FILE, "--arch", ARCH_SPEC, "--format",
                         "torchscript", "--output", output, "--dynamic-batch", "--quiet")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"wrote {output} (TorchScript, ")
    assert "with torch.jit.script on cpu" in lines[0]
    assert lines[1].startswith("exported in eval mode")
    assert lines[2] == "input: float32 [batch, 1, 8, 8] (batch dynamic)"
    assert lines[3].startswith("verified with torch.jit.load at batch 1: max abs diff ")
    assert lines[4].startswith("verified with torch.jit.load at batch 3: max abs diff ")
    assert "tolerance: 0.0001 relative" in out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(output))
    assert loaded(torch.rand(5, 1, 8, 8)).shape == (5, 10)


def test_json_report_after_a_recipe(tmp_path, capsys):
    recipe = tmp_path / "head.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "replace_head", "num_classes": 3, "seed": 0}]}))
    output = tmp_path / "digits.pt2"
    code, out, err = cli(capsys, "export", "--arch", ARCH_SPEC, "--weights", WEIGHTS_FILE,
                         "--recipe", recipe, "--format", "pt2", "--output", output,
                         "--batch-size", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["format"] == "pt2"
    assert report["mode"] == "eval"
    assert report["input"] == "float32 [2, 1, 8, 8]"
    assert [check["batch"] for check in report["verification"]] == [2]
    assert report["max_rel"] <= report["tolerance"] == 1e-4
    assert report["files"] == [str(output)]
    assert torch.export.load(output).module()(torch.rand(2, 1, 8, 8)).shape == (2, 3)


@pytest.mark.skipif(bool(missing_onnx_packages()), reason="the deploy extra")
def test_onnx_with_an_opset_and_a_given_input_shape(tmp_path, capsys):
    output = tmp_path / "mlp.onnx"
    code, out, err = cli(capsys, "export", "--arch", f"{MODELS}:MLP", "--format", "onnx",
                         "--output", output, "--opset", "18", "--input-shape", "6")
    assert code == 0, err
    assert "torch.onnx.export(dynamo=True), opset 18" in out
    assert "input: float32 [1, 6]" in out
    import onnx

    assert [entry.version for entry in onnx.load(str(output)).opset_import
            if entry.domain == ""] == [18]


@pytest.mark.parametrize(("args", "expected"), [
    (["--format", "pt2", "--output", "{out}/m.onnx"],
     "error: {out}/m.onnx: the name says onnx but the format is pt2; name it m.pt2 or use "
     "--format onnx\n"),
    (["--format", "pt2", "--output", "{out}/m.pt2", "--opset", "18"],
     "error: --opset: only ONNX has an opset\n"),
    (["--format", "pt2", "--output", "{out}/m.pt2", "--input-shape", "5"],
     "error: --input-shape: input shape [5] does not fit the model: "),
    (["--format", "pt2", "--output", "{out}/m.pt2", "--method", "trace"],
     "error: --method: only for --format torchscript\n"),
    (["--format", "pt2", "--output", "{out}/m.pt2", "--batch-size", "0"],
     "error: --batch-size: expected a positive integer of at most 65,536\n"),
    (["--format", "pt2", "--output", "{out}/m.pt2", "--input-shape", "100000,100000"],
     "error: --input-shape: a batch of 10,000,000,000 input elements is too large (at most "
     "268,435,456)\n"),
])
def test_errors_are_one_line_and_nothing_is_written(tmp_path, capsys, args, expected):
    args = [arg.replace("{out}", str(tmp_path)) for arg in args]
    code, _out, err = cli(capsys, "export", "--arch", f"{MODELS}:MLP", *args)
    assert code == 2
    assert err.startswith(expected.replace("{out}", str(tmp_path)))
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["export", "--arch", f"{MODELS}:MLP", "--format", "zip", "--output",
              str(tmp_path / "m.zip")])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: weightsmith export: argument --format: invalid choice: 'zip'")
    assert err.count("\n") == 1


def test_data_dependent_control_flow_is_one_line_naming_the_module(tmp_path, capsys):
    output = tmp_path / "gated.pt2"
    code, out, err = cli(capsys, "export", "--arch", f"{MODELS}:Gated", "--format", "pt2",
                         "--output", output)
    assert code == 2
    assert out == ""
    assert err.startswith("error: pt2: cannot export module 'gate' (Gate.forward at "
                          "models.py:")
    assert "data-dependent control flow" in err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_without_an_architecture_is_refused(tmp_path, capsys):
    code, _out, err = cli(capsys, "export", WEIGHTS_FILE, "--format", "pt2", "--output",
                          tmp_path / "m.pt2")
    assert code == 2
    assert err == ("error: export: needs a model; the session is in checkpoint mode (attach "
                   "an architecture first)\n")


def test_the_shared_document_arguments_are_there():
    sub = build_parser()._subparsers._group_actions[0].choices["export"]
    for option in ("--arch", "--arch-args", "--weights", "--trust", "--quiet",
                   "--dynamic-batch", "--input-shape", "--opset", "--format", "--output"):
        assert option in sub._option_string_actions, option


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.parametrize("when", [pytest.param(1, marks=pytest.mark.slow), 2])
def test_a_kill_at_any_rename_leaves_the_old_file_or_the_new_one(tmp_path, when):
    output = tmp_path / "mlp.pt2"
    output.write_bytes(b"the old export")
    command = ["strace", "-f", "-qq", "-o", str(tmp_path / "strace.log"),
               "-e", "trace=rename,renameat,renameat2",
               "-e", f"inject=rename,renameat,renameat2:signal=KILL:when={when}",
               sys.executable, str(ROOT / "main.py"), "export", "--arch", f"{MODELS}:MLP",
               "--format", "pt2", "--output", str(output), "--quiet"]
    result = subprocess.run(command, capture_output=True, cwd=ROOT, timeout=240, check=False)
    assert result.returncode != 0  # killed
    data = output.read_bytes()
    if data != b"the old export":
        program = torch.export.load(output)  # a complete new file, never a partial one
        assert program.module()(torch.zeros(1, 6)).shape == (1, 4)
    finals = [child.name for child in tmp_path.iterdir() if child.name.endswith(".pt2")]
    assert finals == ["mlp.pt2"]
