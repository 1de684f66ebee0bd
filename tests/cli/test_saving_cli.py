"""CLI of saving: formats that follow the name, what `convert`/`apply` say they wrote."""

from __future__ import annotations

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
