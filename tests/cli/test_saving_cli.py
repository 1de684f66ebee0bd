"""CLI of saving: formats that follow the name, what `convert`/`apply` say they wrote."""

from __future__ import annotations

import json

import torch

from cli.main import main
from tests.models import MLP, seeded


def cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_convert_refuses_a_format_that_contradicts_the_name(tmp_path, capsys):
    torch.save(seeded(MLP).state_dict(), tmp_path / "in.pt")
    code, out, err = cli(capsys, "convert", tmp_path / "in.pt", tmp_path / "out.safetensors",
                         "--format", "pt")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: {tmp_path / 'out.safetensors'}: format 'pt' contradicts")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pt"]


def test_a_folder_with_two_forms_says_which_it_reads(tmp_path, capsys):
    from engine.session import Session

    folder = tmp_path / "model"
    Session(checkpoint={"w": torch.zeros(4), "v": torch.zeros(4)}).save(folder, max_shard_size=16)
    assert (folder / "model.safetensors.index.json").is_file()
    Session(checkpoint={"w": torch.ones(4)}).save(tmp_path / "single.safetensors")
    (folder / "model.safetensors").write_bytes((tmp_path / "single.safetensors").read_bytes())
    code, out, err = cli(capsys, "inspect", folder, "--json")
    assert code == 0, err
    assert json.loads(out)["totals"]["stored_tensors"] == 1  # the single file's "w"
    assert "note: the folder also holds model.safetensors.index.json; model.safetensors is " \
        "read, as transformers reads it" in err
