"""CLI of the Files issue: inspect PATH, convert, diff, apply --input; errors in one line."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from cli.main import main
from cli.progress_bar import TerminalProgress
from tests.conftest import ROOT
from tests.models import MLP, TiedLM, seeded

MODELS_FILE = ROOT / "tests" / "models.py"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_inspect_path_json(tmp_path, capsys):
    torch.save(seeded(TiedLM).state_dict(), tmp_path / "lm.pt")
    code, out, err = cli(capsys, "inspect", tmp_path / "lm.pt", "--json")
    assert code == 0, err
    result = json.loads(out)
    rows = {row["name"]: row for row in result["tensors"]}
    assert set(rows) == set(seeded(TiedLM).state_dict())
    assert rows["embed.weight"] == {"name": "embed.weight", "shape": [11, 5], "dtype": "float32",
                                    "numel": 55, "requires_grad": None, "kind": "tensor",
                                    "tie_group": 0}
    assert rows["lm_head.weight"]["tie_group"] == 0
    assert result["totals"]["stored_tensors"] == len(rows) - 1
    assert result["source"]["format"] == "pt"


def test_inspect_path_with_arch_shows_requires_grad(tmp_path, capsys):
    save_file(seeded(MLP).state_dict(), str(tmp_path / "m.safetensors"))
    code, out, err = cli(capsys, "inspect", tmp_path / "m.safetensors", "--arch",
                         f"{MODELS_FILE}:MLP", "--json")
    assert code == 0, err
    assert all(row["requires_grad"] is True for row in json.loads(out)["tensors"])


def test_inspect_table_mentions_prefix_and_candidates(tmp_path, capsys):
    state = {f"module.{k}": v for k, v in seeded(MLP).state_dict().items()}
    torch.save({"state_dict": state, "ema": state, "epoch": 2}, tmp_path / "run.ckpt")
    code, out, _ = cli(capsys, "inspect", tmp_path / "run.ckpt")
    assert code == 0
    assert "--strip-prefix" in out
    assert "state_dict, ema" in out
    code, out, _ = cli(capsys, "inspect", tmp_path / "run.ckpt", "--choice", "ema",
                       "--strip-prefix", "--json")
    assert json.loads(out)["tensors"][0]["name"] == "fc1.weight"


def test_untrusted_pickle_is_one_line_exit_2(tmp_path, capsys):
    torch.save(seeded(MLP), tmp_path / "whole.pt")
    code, out, err = cli(capsys, "inspect", tmp_path / "whole.pt")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: {tmp_path / 'whole.pt'}: refused")
    assert "tests.models.MLP" in err
    assert "weights_only" not in err
    code, out, err = cli(capsys, "inspect", tmp_path / "whole.pt", "--trust", "--json")
    assert code == 0, err
    assert json.loads(out)["mode"] == "model"


def test_convert_to_folder_and_shards(tmp_path, capsys):
    torch.save({"state_dict": seeded(MLP).state_dict(), "epoch": 1}, tmp_path / "in.ckpt")
    code, _out, err = cli(capsys, "convert", tmp_path / "in.ckpt", tmp_path / "hf")
    assert code == 0, err
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    assert "not saved" in err  # the epoch cannot go into safetensors: said, not hidden
    code, _, err = cli(capsys, "convert", tmp_path / "hf", tmp_path / "sh.safetensors",
                       "--max-shard-size", "200")
    assert code == 0, err
    index = json.loads((tmp_path / "sh.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    code, _, err = cli(capsys, "convert", tmp_path / "sh.safetensors.index.json",
                       tmp_path / "back.pt")
    assert code == 0, err
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    assert all(torch.equal(back[k], v) for k, v in seeded(MLP).state_dict().items())


def test_apply_with_input_checkpoint(tmp_path, capsys):
    save_file(seeded(MLP).state_dict(), str(tmp_path / "m.safetensors"))
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "cast", "targets": ["fc1.*"], "dtype": "float16"},
        {"op": "rename", "pattern": "^fc2\\.", "replacement": "head."}]}))
    code, _out, err = cli(capsys, "apply", recipe, "--input", tmp_path / "m.safetensors",
                         "--output", tmp_path / "out.safetensors")
    assert code == 0, err
    saved = load_file(str(tmp_path / "out.safetensors"))
    assert saved["fc1.weight"].dtype == torch.float16
    assert "head.bias" in saved


def test_diff_exit_codes_and_json(tmp_path, capsys):
    state = seeded(MLP).state_dict()
    save_file(state, str(tmp_path / "a.safetensors"))
    torch.save(state, tmp_path / "same.pt")
    torch.save({**state, "fc1.bias": state["fc1.bias"] + 1}, tmp_path / "b.pt")
    code, out, _ = cli(capsys, "diff", tmp_path / "a.safetensors", tmp_path / "same.pt")
    assert code == 0
    assert out.startswith("identical")
    code, out, _ = cli(capsys, "diff", tmp_path / "a.safetensors", tmp_path / "b.pt")
    assert code == 1
    assert "M fc1.bias: 8 of 8 elements changed" in out
    code, out, _ = cli(capsys, "diff", tmp_path / "a.safetensors", tmp_path / "b.pt", "--json")
    assert json.loads(out)["changed"][0]["name"] == "fc1.bias"


@pytest.mark.parametrize("content", [b"", b"\x00" * 5, b"\xff" * 64])
def test_bad_files_give_one_line_and_write_nothing(tmp_path, capsys, content):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    code, _out, err = cli(capsys, "convert", bad, tmp_path / "out.pt")
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"error: {bad}:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors"]


def test_real_process_prints_no_traceback(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect",
                             str(tmp_path / "notes.txt")], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 'notes.txt'}: not a checkpoint (expected " \
        ".safetensors, a torch.save file such as .pt/.pth/.bin/.ckpt, or a Hugging Face model " \
        "folder)\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_not_quiet():
    terminal = _Terminal()
    bar = TerminalProgress(stream=terminal)
    bar.update(1.0, "Writing")
    bar.close()
    assert "[##############################] 100% Writing" in terminal.getvalue()
    quiet = _Terminal()
    TerminalProgress(quiet=True, stream=quiet).update(1.0, "Writing")
    assert quiet.getvalue() == ""
    piped = io.StringIO()
    TerminalProgress(stream=piped).update(1.0, "Writing")
    assert piped.getvalue() == ""
