"""Hugging Face folders on the command line: `--arch hf`, `--strict/--no-strict`, counts."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from cli.main import build_parser, main
from tests.conftest import ROOT
from tests.engine.io import hf_folders
from tests.engine.io.hf_folders import from_pretrained
from tests.models import MLP, seeded

MODELS_FILE = ROOT / "tests" / "models.py"


def cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_inspect_sentence_transformers_folder_in_model_mode(tmp_path, capsys):
    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    code, out, err = cli(capsys, "inspect", folder, "--arch", "hf", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["mode"] == "model"
    assert "embeddings.position_ids" not in {row["name"] for row in result["tensors"]}
    ignored = result["source"]["load_report"]["ignored"]
    assert [item["name"] for item in ignored] == ["embeddings.position_ids"]
    assert "note: ignored 1 tensor(s) of the file, as transformers does: " \
           "embeddings.position_ids" in err


def test_strict_and_no_strict(tmp_path, capsys):
    folder = hf_folders.head_model_from_base(tmp_path / "head")
    for flags in ([], ["--strict"]):
        code, _out, err = cli(capsys, "inspect", folder, "--arch", "hf", *flags)
        assert code == 2
        assert err.count("\n") == 1
        assert "missing from the file (e.g. 'classifier.weight')" in err
        assert "--no-strict" in err
    code, out, err = cli(capsys, "inspect", folder, "--arch", "hf", "--no-strict")
    assert code == 0, err
    assert "classifier.weight" in out
    assert "note: 2 tensor(s) of the model missing from the file" in err


@pytest.mark.parametrize("command", ["inspect", "apply", "train", "script"])
def test_every_command_that_attaches_an_architecture_has_the_switch(command):
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    assert {"--strict", "--no-strict"} <= set(sub._option_string_actions)


def test_weights_for_an_architecture_follow_the_switch(tmp_path, capsys):
    state = seeded(MLP).state_dict()
    del state["fc2.bias"]
    save_file(state, str(tmp_path / "partial.safetensors"))
    arch = ["--arch", f"{MODELS_FILE}:MLP", "--weights", tmp_path / "partial.safetensors"]
    code, _out, err = cli(capsys, "inspect", *arch)
    assert code == 2
    assert "fc2.bias" in err
    code, out, err = cli(capsys, "inspect", *arch, "--no-strict")
    assert code == 0, err
    assert "fc2.bias" in out


def test_apply_counts_what_it_writes(tmp_path, capsys):
    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "scale", "targets": ["pooler.dense.weight"], "value": 2.0}]}))
    for output in ("out.safetensors", "out.pt", "outdir"):
        code, out, err = cli(capsys, "apply", recipe, "--input", folder, "--arch", "hf",
                             "--output", tmp_path / output)
        assert code == 0, err
        if output.endswith(".pt"):
            written = len(torch.load(tmp_path / output, weights_only=True))
        else:
            path = tmp_path / output
            path = path / "model.safetensors" if path.is_dir() else path
            with safe_open(str(path), "pt") as handle:
                written = len(list(handle.keys()))
        # The model's 23 parameters, not its 2 non-persistent buffers.
        assert written == 23
        assert f"({written} tensors," in out
    _model, info = from_pretrained(tmp_path / "outdir")
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
