"""Every JSON Weightsmith reads from a file goes through one parser (issue 8 §4, per route).

Python's json fails on hostile input in ways a plain `except JSONDecodeError` misses: a
number of more than 4300 digits raises a bare ValueError, deep nesting a RecursionError.
Each route below is fed both, and must answer with one line naming the file (or ignore
what it only reads to help, as documented), never with another exception type.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from engine import Session
from engine.errors import ArchError, FileError
from engine.io import hf_folder

from .files import mlp_state

HOSTILE = {"digits": "1" * 5000, "nesting": "[" * 100_000 + "]" * 100_000}


@pytest.fixture(params=sorted(HOSTILE))
def hostile(request) -> str:
    return HOSTILE[request.param]


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_a_safetensors_ties_record(tmp_path, hostile):
    path = tmp_path / "x.safetensors"
    save_file(mlp_state(), str(path), metadata={"weightsmith.ties": hostile})
    with pytest.raises(FileError, match=r"x\.safetensors: metadata 'weightsmith\.ties' is not "
                       r"valid JSON") as refused:
        Session.open(path)
    one_line(refused.value)


def test_the_other_weightsmith_records(tmp_path, hostile):
    path = tmp_path / "x.safetensors"
    save_file(mlp_state(), str(path), metadata={"weightsmith.aliases": hostile})
    with pytest.raises(FileError, match=r"x\.safetensors: .*not valid JSON") as refused:
        Session.open(path)
    one_line(refused.value)
    # The frozen names only restore flags: a record that is not JSON restores none.
    save_file(mlp_state(), str(path), metadata={"weightsmith.frozen": hostile})
    assert Session.open(path).document.frozen_names() == []


def test_a_recipe_record_is_not_carried_on_by_a_save(tmp_path, hostile):
    source = tmp_path / "x.safetensors"
    save_file(mlp_state(), str(source), metadata={"weightsmith.recipe": hostile})
    session = Session.open(source)
    session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 2.0})
    out = tmp_path / "y.safetensors"
    session.save(out)
    with safe_open(str(out), "pt") as handle:
        recipe = json.loads(handle.metadata()["weightsmith.recipe"])
    assert [edit["op"] for edit in recipe] == ["scale"]


@pytest.mark.parametrize("name", ["model.safetensors.index.json"])
def test_a_shard_index(tmp_path, hostile, name):
    folder = tmp_path / "set"
    Session(checkpoint=mlp_state()).save(folder, max_shard_size=100)
    (folder / name).write_text(hostile)
    for route in (lambda: Session.open(folder), lambda: Session.open(folder / name)):
        with pytest.raises(FileError, match=r"index\.json: not .*valid") as refused:
            route()
        one_line(refused.value)


def hf_like_folder(tmp_path: Path, config_text: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    save_file(mlp_state(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(config_text)
    return folder


def test_a_config_for_model_mode(tmp_path, hostile):
    pytest.importorskip("transformers")
    folder = hf_like_folder(tmp_path, hostile)
    with pytest.raises(ArchError, match=r"config\.json: not valid JSON") as refused:
        Session.open(folder, arch="hf")
    one_line(refused.value)
    session = Session.open(folder)
    with pytest.raises(Exception, match=r"config\.json: not valid JSON") as refused:
        session.apply({"op": "attach", "arch": "hf"})
    one_line(refused.value)


def test_a_config_read_only_to_help_is_ignored(tmp_path, hostile):
    # The GUI's offer of model mode, the list of remote code, and the ties a folder save
    # keeps for transformers read config.json only to help: a hostile one is no model.
    folder = hf_like_folder(tmp_path, hostile)
    assert hf_folder.model_folder(folder) is None
    assert hf_folder.remote_code_files(folder) == []
    session = Session.open(folder)
    session.save(tmp_path / "out")
    assert (tmp_path / "out" / "config.json").read_text() == hostile


def test_a_sentence_transformers_module_list(tmp_path, hostile):
    folder = hf_like_folder(tmp_path, '{"model_type": "mlp"}')
    (folder / "modules.json").write_text(hostile)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text("{}")
    Session.open(folder).save(tmp_path / "out")
    assert (tmp_path / "out" / "modules.json").read_text() == hostile
    assert (tmp_path / "out" / "1_Pooling" / "config.json").read_text() == "{}"


def test_a_recipe_and_a_journal(tmp_path, hostile):
    from engine.journal import read_entry
    from engine.recipe import read_recipe

    recipe = tmp_path / "r.json"
    recipe.write_text(hostile)
    with pytest.raises(FileError, match=r"r\.json: not valid JSON") as refused:
        read_recipe(recipe)
    one_line(refused.value)
    journal = tmp_path / "journal.json"
    journal.write_text(hostile)
    try:
        entry = read_entry(journal)
    except FileError as error:
        one_line(error)
    else:
        assert entry is None


def test_no_other_code_parses_json_itself():
    # The class, not only the routes above: every parse goes through engine.io.json_files.
    import ast

    from tests.conftest import ROOT

    offenders = []
    for folder in ("engine", "cli", "gui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "engine" / "io" / "json_files.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Attribute) and node.attr in ("load", "loads")
                        and isinstance(node.value, ast.Name) and node.value.id == "json"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
