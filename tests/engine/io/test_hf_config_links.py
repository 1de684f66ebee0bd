"""`hf` reads a folder's config.json only from inside the folder (issue 8 §2 for configs).

transformers follows links: a config.json that is a link leaving the folder would make
`--arch hf` (and `attach` `hf`, and the GUI's offer to open a folder in model mode) read
a file from elsewhere. It is resolved and refused before transformers sees the folder,
as the folder's weights are; a hub cache snapshot's links into its own `blobs/` stay
allowed, and so do links within the folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import EditError, Session
from engine.errors import ArchError
from engine.io.hf_folder import build_hf_model, model_folder
from tests.conftest import ROOT

from .hf_folders import bert_config, quiet, saved

transformers = pytest.importorskip("transformers")


def bert_folder(folder: Path) -> Path:
    with quiet():
        return saved(folder, transformers.BertModel(bert_config()))


def linked_config(tmp_path: Path, how: str) -> Path:
    """A BERT folder whose config.json is a link leaving it (to a config of other sizes)."""
    folder = bert_folder(tmp_path / "model")
    outside = tmp_path / "outside"
    outside.mkdir()
    config = json.loads((folder / "config.json").read_text())
    (outside / "config.json").write_text(json.dumps({**config, "hidden_size": 16}))
    (folder / "config.json").unlink()
    if how == "absolute":
        (folder / "config.json").symlink_to(outside / "config.json")
    elif how == "relative":
        (folder / "config.json").symlink_to(Path("..") / "outside" / "config.json")
    else:  # a chain: an inside link to a folder link that leaves
        (folder / "hop").symlink_to(Path("..") / "outside")
        (folder / "config.json").symlink_to(Path("hop") / "config.json")
    return folder


@pytest.mark.parametrize("how", ["absolute", "relative", "chain"])
def test_a_config_link_leaving_the_folder_is_refused_on_every_route(tmp_path, how):
    folder = linked_config(tmp_path, how)
    with pytest.raises(ArchError, match=r"config\.json: is a link to .*outside") as refused:
        Session.open(folder, arch="hf")
    assert "\n" not in str(refused.value)
    with pytest.raises(ArchError, match="outside"):
        build_hf_model(folder, trust=True)  # trust lets code run, never files leave
    session = Session.open(folder)  # checkpoint mode needs no config
    with pytest.raises(EditError, match=r"config\.json: is a link to .*outside"):
        session.apply({"op": "attach", "arch": "hf"})
    assert session.mode == "checkpoint"
    # The GUI offers model mode from model_folder: a config from outside is not offered.
    assert model_folder(folder) is None


def test_the_cli_refuses_a_linked_config_in_one_line(tmp_path):
    folder = linked_config(tmp_path, "relative")
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(folder),
                             "--arch", "hf"], capture_output=True, text=True, cwd=ROOT,
                            stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "config.json: is a link to" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_config_links_inside_the_folder_and_hub_snapshots_still_build(tmp_path):
    folder = bert_folder(tmp_path / "model")
    (folder / "configs").mkdir()
    (folder / "config.json").rename(folder / "configs" / "real.json")
    (folder / "config.json").symlink_to(Path("configs") / "real.json")
    assert Session.open(folder, arch="hf").mode == "model"
    assert model_folder(folder)["architecture"] == "BertModel"

    repository = tmp_path / "hub" / "models--org--bert"
    snapshot = repository / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (repository / "blobs").mkdir()
    for name in ("configs/real.json", "model.safetensors"):
        blob = repository / "blobs" / name.replace("/", "_")
        (folder / name).rename(blob)
        (snapshot / Path(name).name.replace("real.json", "config.json")).symlink_to(
            Path("../../blobs") / blob.name)
    assert Session.open(snapshot, arch="hf").mode == "model"


def test_trusted_remote_code_may_not_be_a_link_leaving_the_folder(tmp_path):
    folder = bert_folder(tmp_path / "model")
    marker = tmp_path / "ran.txt"
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    outside = tmp_path / "elsewhere.py"
    outside.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    (folder / "configuration_evil.py").symlink_to(outside)
    with pytest.raises(ArchError, match=r"configuration_evil\.py: is a link to .*outside"):
        build_hf_model(folder, trust=True)
    assert not marker.exists()
