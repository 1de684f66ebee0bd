"""A few bytes of config never cost unbounded memory when a model is built to open a file.

A folder's config.json is input like its weights: `n_embd: 200000` in a GPT-2 config asks
for terabytes, and `--arch-args '{"num_classes": 10**9}'` does the same for a torchvision
model. Such a model is built on the meta device first and refused in one line when it
is larger than the file it is built for can fill (engine.allocation.check_build); before,
the real build allocated what the numbers said (or died trying).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from cli.main import main
from engine import Session, allocation
from engine.errors import ArchError, EditError
from engine.io import hf_folder
from engine.opening import open_model
from tests.engine.io.hf_folders import gpt2_config, quiet

transformers = pytest.importorskip("transformers")


def one_line(error: BaseException) -> str:
    message = str(error)
    assert message
    assert "\n" not in message
    return message


@pytest.fixture
def folders(tmp_path):
    """A tiny GPT-2 folder and a copy whose config.json asks for a 3.5 TiB model."""
    good = tmp_path / "good"
    with quiet():
        transformers.GPT2LMHeadModel(gpt2_config()).save_pretrained(good)
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    shutil.copy(good / "model.safetensors", bomb / "model.safetensors")
    config = json.loads((good / "config.json").read_text())
    config["n_embd"] = 200_000
    (bomb / "config.json").write_text(json.dumps(config))
    return good, bomb


@pytest.fixture
def builds(monkeypatch):
    """The device of every build of a Hugging Face model (meta for a sizing build)."""
    devices: list[str] = []
    real = hf_folder.build_hf_model

    def recording(*args, **kwargs):
        devices.append(str(torch.get_default_device()))
        return real(*args, **kwargs)

    monkeypatch.setattr(hf_folder, "build_hf_model", recording)
    return devices


def test_a_config_asking_for_terabytes_is_refused_before_building(folders, builds):
    _, bomb = folders
    with quiet(), pytest.raises(ArchError) as refused:
        Session.open(bomb, arch="hf")
    message = one_line(refused.value)
    assert str(bomb / "config.json") in message
    assert "describes a model of 3.5 TiB" in message
    assert "refused before building it" in message
    assert builds == ["meta"]  # sized on meta; never built for real


def test_an_honest_folder_opens_with_its_weights(folders, builds):
    good, _ = folders
    with quiet():
        session = Session.open(good, arch="hf")
    stored = transformers.GPT2LMHeadModel.from_pretrained(good).state_dict()
    mine = session.document.state_dict()
    assert all(torch.equal(mine[name], stored[name]) for name in stored)
    assert builds == ["meta", "cpu"]


def test_a_bfloat16_folder_fills_a_float32_model_of_twice_its_size(tmp_path, monkeypatch):
    """The limit is FILE_FACTOR x the file: a half-precision checkpoint is not refused even
    when the floor does not cover it (the floor is set to nothing here)."""
    folder = tmp_path / "bf16"
    with quiet():
        transformers.GPT2LMHeadModel(gpt2_config()).to(torch.bfloat16).save_pretrained(folder)
    monkeypatch.setattr(allocation, "FLOOR_BYTES", 0)
    with quiet():
        session = Session.open(folder, arch="hf")
    assert session.document.state_dict()["transformer.wte.weight"].shape == (30, 8)
    monkeypatch.setattr(allocation, "FILE_FACTOR", 1)  # the same numbers, held tighter
    with quiet(), pytest.raises(ArchError, match="1x the"):
        Session.open(folder, arch="hf")


def test_arch_args_for_a_file_are_sized(tmp_path):
    pytest.importorskip("torchvision")
    path = tmp_path / "head.pt"
    torch.save({"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(ArchError) as refused:
        Session.open(path, arch="torchvision:resnet18", arch_args={"num_classes": 10**9},
                     strict=False)
    message = one_line(refused.value)
    assert "torchvision:resnet18 with these arch-args describes a model of" in message


def test_arch_args_without_a_file_are_held_to_the_memory_available(monkeypatch):
    pytest.importorskip("torchvision")
    with pytest.raises(ArchError) as refused:
        open_model("torchvision:resnet18", {"num_classes": 10**9})
    assert "the memory available" in one_line(refused.value)
    # A listing (meta) allocates nothing, so it is not refused.
    listed = open_model("torchvision:resnet18", {"num_classes": 10**9}, meta=True)
    assert listed.document.state_dict()["fc.weight"].is_meta


def test_attaching_a_folders_config_is_sized(folders):
    _, bomb = folders
    session = Session.open(bomb)  # checkpoint mode: no model yet
    before = {name: tensor.clone() for name, tensor in session.document.state_dict().items()}
    with quiet(), pytest.raises(EditError) as refused:
        session.apply({"op": "attach", "arch": "hf"})
    message = one_line(refused.value)
    assert message.startswith("attach.arch_args: ")
    assert "would allocate 3.5 TiB" in message
    after = session.document.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert not session.history.labels


def test_the_cli_says_it_in_one_line(folders, capsys):
    _, bomb = folders
    with quiet():
        code = main(["inspect", str(bomb), "--arch", "hf"])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "refused before building it" in errors[0]
