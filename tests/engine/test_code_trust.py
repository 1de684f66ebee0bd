"""Recipes, journals and Hugging Face folders run no code without explicit trust (issue 8 §1).

Each piece of code is a Python file that leaves a marker file when it runs: the proof
that it ran. Every route is tried: `Session.apply`, a `group`, recipe replay, the crash
journal, the CLI's `apply`, `train` and `script`, and `--arch hf` over a folder whose
config.json names its own code (with standard input closed and with a "y" piped in, so
transformers' own y/N prompt can neither decide nor block).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from engine import EditError, Session
from engine.code_needs import CodeNotTrusted, arch_code, recipe_code, request_code
from engine.journal import Journal, journal_code, read_entry, restore
from engine.recipe import replay
from tests.conftest import ROOT
from tests.models import MLP, seeded


@pytest.fixture
def code_file(tmp_path):
    """A model file that leaves `ran.txt` when imported."""
    marker = tmp_path / "ran.txt"
    path = tmp_path / "net.py"
    path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
                    "from tests.models import MLP as Net\n")
    return path, marker


@pytest.fixture
def mlp_file(tmp_path):
    path = tmp_path / "mlp.safetensors"
    save_file({k: v.clone() for k, v in seeded(MLP).state_dict().items()}, str(path))
    return path


def attach(code_path) -> dict:
    return {"op": "attach", "arch": f"{code_path}:Net"}


def test_attach_with_a_py_file_needs_trust_and_names_the_file(code_file, mlp_file):
    path, marker = code_file
    session = Session.open(mlp_file)
    with pytest.raises(CodeNotTrusted) as refused:
        session.apply(attach(path))
    message = str(refused.value)
    assert message.startswith("attach.arch: imports and runs ")
    assert str(path) in message
    assert "--trust" in message
    assert "\n" not in message
    assert refused.value.code == [f"attach.arch: imports and runs {path} (class Net)"]
    assert not marker.exists()
    assert session.mode == "checkpoint"
    assert not session.can_undo
    session.apply(attach(path), trust=True)
    assert marker.exists()
    assert session.mode == "model"


def test_a_group_and_a_recipe_are_refused_before_anything_is_applied(code_file, mlp_file):
    path, marker = code_file
    session = Session.open(mlp_file)
    edits = [{"op": "scale", "targets": ["fc1.bias"], "value": 2.0},
             {"op": "group", "edits": [{"op": "scale", "targets": ["fc1.bias"], "value": 2.0},
                                       attach(path)]}]
    assert recipe_code(edits, session) == [
        f"edits[1]: group.edits[1]: attach.arch: imports and runs {path} (class Net)"]
    before = session.document.tensor("fc1.bias").clone()
    with pytest.raises(CodeNotTrusted, match=r"edits\[1\]: group\.edits\[1\]: attach\.arch"):
        replay(session, edits)
    with pytest.raises(CodeNotTrusted, match=r"group\.edits\[1\]"):
        session.apply(edits[1])
    assert not marker.exists()
    assert not session.can_undo
    assert torch.equal(session.document.tensor("fc1.bias"), before)
    replay(session, edits, trust=True)
    assert marker.exists()
    assert session.mode == "model"


@pytest.mark.parametrize(("arch", "args", "field"), [
    ("hf", {"trust_remote_code": True}, "attach.arch_args.trust_remote_code"),
    ("timm:resnet18", {"checkpoint_path": "x.pth"}, "attach.arch_args.checkpoint_path"),
    ("timm:resnet18", {"pretrained_cfg_overlay": {"file": "x"}},
     "attach.arch_args.pretrained_cfg_overlay"),
])
def test_arch_args_that_reach_code_need_trust(mlp_file, arch, args, field):
    session = Session.open(mlp_file)
    with pytest.raises(CodeNotTrusted, match=field.replace(".", r"\.")):
        session.apply({"op": "attach", "arch": arch, "arch_args": args})
    assert session.mode == "checkpoint"


def test_library_architectures_need_no_trust():
    assert arch_code("torchvision:resnet18", {"num_classes": 3}) == []
    assert arch_code("timm:resnet18", {"num_classes": 3}) == []


def test_the_crash_journal_asks_before_it_runs_code(tmp_path, code_file, mlp_file):
    path, marker = code_file
    session = Session.open(mlp_file)
    session.apply(attach(path), trust=True)
    session.apply({"op": "scale", "targets": ["fc1.bias"], "value": 2.0})
    marker.unlink()
    journal = Journal(tmp_path / "journal", pid=999_999_999)
    journal.opened({"kind": "file", "path": str(mlp_file), "arch": None, "arch_args": None,
                    "trust": False, "options": {}})
    journal.write(session)
    entry = read_entry(journal.path)
    assert journal_code(entry) == [f"edits[0]: attach.arch: imports and runs {path} (class Net)"]
    with pytest.raises(EditError, match=r"needs trust to restore \(edits\[0\]: attach\.arch"):
        restore(entry)
    assert not marker.exists()
    restored, _, labels = restore(entry, allow_trust=True)
    assert restored.mode == "model"
    assert len(labels) == 2
    assert torch.equal(restored.document.tensor("fc1.bias"), session.document.tensor("fc1.bias"))


def test_a_journal_request_with_an_arch_file_needs_trust(tmp_path, code_file):
    path, marker = code_file
    request = {"kind": "arch", "arch": f"{path}:Net", "arch_args": None, "weights": None}
    assert request_code(request) == [f"arch: imports and runs {path} (class Net)"]
    journal = Journal(tmp_path / "journal", pid=999_999_998)
    journal.opened(request)
    session = Session(seeded(MLP))
    session.apply({"op": "scale", "targets": ["fc1.bias"], "value": 2.0})
    journal.write(session)
    with pytest.raises(EditError, match="needs trust to restore"):
        restore(read_entry(journal.path))
    assert not marker.exists()


# ---------------------------------------------------------------------- the CLI
def run(*args: str, stdin: object = subprocess.DEVNULL,
        text_in: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, input=text_in,
                          stdin=None if text_in is not None else stdin)


def test_cli_apply_train_and_script_refuse_a_recipe_that_imports_code(tmp_path, code_file,
                                                                      mlp_file):
    path, marker = code_file
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [attach(path)]}))
    out = tmp_path / "out.safetensors"
    for args in (["apply", str(recipe), "--input", str(mlp_file), "--output", str(out)],
                 ["train", "--input", str(mlp_file), "--recipe", str(recipe), "--data",
                  "synthetic", "--steps", "1"]):
        result = run(*args, "--quiet")
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: edits[0]: attach.arch: imports and runs ")
        assert result.stderr.count("\n") == 1
        assert "--trust" in result.stderr
        assert not marker.exists()
        assert not out.exists()
    script = tmp_path / "edits.py"
    for extra in ([], ["--trust"]):
        result = run("script", str(recipe), "--input", str(mlp_file), "--output", str(script),
                     *extra)
        assert result.returncode == 2
        assert result.stderr.startswith("error: script: edits[0]: attach.arch: ")
        assert "never runs" in result.stderr
        assert result.stderr.count("\n") == 1
        assert not marker.exists()
        assert not script.exists()
    result = run("apply", str(recipe), "--input", str(mlp_file), "--output", str(out),
                 "--trust", "--quiet")
    assert result.returncode == 0, result.stderr
    assert marker.exists()
    assert out.exists()


# ---------------------------------------------------------------------- Hugging Face
def custom_code_folder(folder, marker) -> None:
    """A folder whose config.json needs its own configuration file (which leaves `marker`)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil-custom", "architectures": ["EvilModel"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",
                     "AutoModel": "modeling_evil.EvilModel"}}))
    (folder / "configuration_evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil-custom'\n")
    (folder / "modeling_evil.py").write_text("raise RuntimeError('modeling ran')\n")
    save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"))


def test_a_folder_that_needs_remote_code_is_refused_in_one_line(tmp_path):
    pytest.importorskip("transformers")
    folder, marker = tmp_path / "model", tmp_path / "ran.txt"
    custom_code_folder(folder, marker)
    with pytest.raises(Exception, match="needs remote code") as refused:
        Session.open(folder, arch="hf")
    message = str(refused.value)
    assert "configuration_evil.py" in message
    assert "modeling_evil.py" in message
    assert "\n" not in message
    assert not marker.exists()
    session = Session.open(folder)
    with pytest.raises(CodeNotTrusted, match=r"attach\.arch: .*configuration_evil\.py"):
        session.apply({"op": "attach", "arch": "hf"})
    assert not marker.exists()


@pytest.mark.parametrize("answer", [None, "y\n"])
def test_transformers_never_prompts_and_never_runs_the_folder_code(tmp_path, answer):
    pytest.importorskip("transformers")
    folder, marker = tmp_path / "model", tmp_path / "ran.txt"
    custom_code_folder(folder, marker)
    # Standard input closed, or a "y" piped in: transformers' own prompt would run the code.
    result = run("inspect", str(folder), "--arch", "hf", text_in=answer)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "needs remote code (configuration_evil.py, modeling_evil.py)" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "[y/N]" not in result.stdout + result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("trust", [False, True])
def test_transformers_is_never_asked_to_prompt(tmp_path, monkeypatch, trust):
    pytest.importorskip("transformers")
    import builtins

    from engine.errors import ArchError
    from engine.io.hf_folder import build_hf_model

    def prompted(*args, **kwargs):
        raise AssertionError("transformers prompted for trust_remote_code (it would block)")

    # transformers asks with input() under a 15 s alarm: any call of it is the prompt.
    monkeypatch.setattr(builtins, "input", prompted)
    folder, marker = tmp_path / "model", tmp_path / "ran.txt"
    custom_code_folder(folder, marker)
    with pytest.raises(ArchError) as refused:
        build_hf_model(folder, trust=trust)
    assert ("needs remote code" in str(refused.value)) is not trust
    assert marker.exists() is trust


def test_with_trust_transformers_is_allowed_to_run_the_folder_code(tmp_path):
    pytest.importorskip("transformers")
    folder, marker = tmp_path / "model", tmp_path / "ran.txt"
    custom_code_folder(folder, marker)
    # The configuration runs (trust_remote_code=True reached transformers); this toy folder
    # has no real model class, so building it then fails in one line.
    result = run("inspect", str(folder), "--arch", "hf", "--trust")
    assert marker.exists()
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
