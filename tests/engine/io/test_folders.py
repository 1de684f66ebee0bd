"""Folders: no file from outside them is read or written (links are resolved first), and a
folder save keeps every file and subfolder that is not the model's weights, byte for byte
(checked with sentence-transformers' own loader)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cli.main import main
from engine.errors import FileError
from engine.session import Session

from .files import assert_same_tensors, mlp_state


def sharded_folder(folder: Path) -> Path:
    Session(checkpoint=mlp_state()).save(folder, max_shard_size=100)
    return folder


def outside_file(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    secret = outside / "secret.safetensors"
    save_file({"stolen": torch.arange(3.0)}, str(secret))
    return secret


def first_shard(folder: Path) -> Path:
    return sorted(folder.glob("model-*.safetensors"))[0]


@pytest.mark.parametrize("kind", ["absolute", "relative", "chain", "to-a-folder", "dangling"])
def test_a_shard_link_that_leaves_the_folder_is_refused(tmp_path, kind):
    folder = sharded_folder(tmp_path / "model")
    secret = outside_file(tmp_path)
    shard = first_shard(folder)
    shard.unlink()
    if kind == "absolute":
        shard.symlink_to(secret)
    elif kind == "relative":
        shard.symlink_to(Path("..") / "outside" / secret.name)
    elif kind == "chain":
        (folder / "hop").symlink_to(Path("..") / "outside")
        shard.symlink_to(Path("hop") / secret.name)
    elif kind == "to-a-folder":
        (folder / "sub").mkdir()
        shard.symlink_to("sub")
    else:
        shard.symlink_to(folder / "gone.safetensors")
    expected = {"absolute": "outside", "relative": "outside", "chain": "outside",
                "to-a-folder": "not a regular file", "dangling": "does not exist"}[kind]
    with pytest.raises(FileError, match=expected) as caught:
        Session.open(folder)
    assert shard.name in str(caught.value)
    assert "\n" not in str(caught.value)


def test_links_that_stay_inside_the_folder_are_followed(tmp_path):
    folder = sharded_folder(tmp_path / "model")
    shard = first_shard(folder)
    (folder / "store").mkdir()
    shard.rename(folder / "store" / "blob")
    (folder / "hop").symlink_to("store")
    shard.symlink_to(Path("hop") / "blob")  # a chain of two links, both inside
    session = Session.open(folder)
    document = session.document
    assert_same_tensors({n: document.tensor(n) for n in document.tensor_names()}, mlp_state())


def test_the_weights_of_a_folder_may_not_be_a_link_outside(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").symlink_to(outside_file(tmp_path))
    with pytest.raises(FileError, match="outside"):
        Session.open(folder)


def test_a_hub_cache_snapshot_opens(tmp_path):
    repository = tmp_path / "hub" / "models--org--tiny"
    (repository / "blobs").mkdir(parents=True)
    snapshot = repository / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    save_file(mlp_state(), str(repository / "blobs" / "9f8e"))
    (repository / "blobs" / "c0nf").write_text('{"model_type": "mlp"}')
    (snapshot / "model.safetensors").symlink_to(Path("../../blobs/9f8e"))
    (snapshot / "config.json").symlink_to(Path("../../blobs/c0nf"))
    session = Session.open(snapshot)
    session.save(tmp_path / "out")
    assert (tmp_path / "out" / "config.json").read_text() == '{"model_type": "mlp"}'
    assert not (tmp_path / "out" / "config.json").is_symlink()


def test_convert_never_copies_a_file_from_outside_the_folder(tmp_path, capsys):
    source = tmp_path / "hf"
    source.mkdir()
    save_file(mlp_state(), str(source / "model.safetensors"))
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0\n")
    (source / "vocab.txt").symlink_to(secret)
    (source / "merges.txt").symlink_to(Path("..") / "outside" / "passwd")
    (source / "real.json").write_text('{"inside": true}')
    (source / "tokenizer.json").symlink_to("real.json")  # inside: copied as a file
    (source / "docs").symlink_to(secret.parent)  # a folder outside
    (source / "gone.txt").symlink_to(source / "nothing")
    os.mkfifo(source / "pipe")  # would block a reader forever
    (source / "loop").symlink_to(".")
    code = main(["convert", str(source), str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = tmp_path / "out"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert written == ["model.safetensors", "real.json", "tokenizer.json"]
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert (out / "tokenizer.json").read_text() == '{"inside": true}'
    assert all("root:x" not in p.read_text(errors="replace") for p in out.rglob("*.json"))
    note = next(line for line in captured.err.splitlines() if "not copied" in line)
    for name in ("vocab.txt (", "merges.txt (", "docs (", "gone.txt (", "pipe (", "loop/ ("):
        assert name in note


def test_a_folder_save_keeps_every_file_and_subfolder(tmp_path):
    source = tmp_path / "st"
    source.mkdir()
    save_file(mlp_state(), str(source / "model.safetensors"))
    files = {
        "config.json": b'{"model_type": "bert"}',
        "modules.json": json.dumps([{"idx": 0, "name": "0", "path": "",
                                     "type": "sentence_transformers.models.Transformer"},
                                    {"idx": 1, "name": "1", "path": "2_Dense",
                                     "type": "sentence_transformers.models.Dense"}]).encode(),
        ".gitattributes": b"*.safetensors filter=lfs\n",
        "README.md": "# Modèle\n".encode(),
        "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
        "2_Dense/config.json": b'{"in_features": 4}',
        "deep/er/still.txt": b"\x00\x01binary\xff",
        "empty/.keep": b"",
    }
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    save_file({"linear.weight": torch.ones(4, 4)}, str(source / "2_Dense" / "model.safetensors"))
    (source / "onnx").mkdir()
    (source / "onnx" / "model.onnx").write_bytes(b"stale export")
    (source / "tf_model.h5").write_bytes(b"stale tf weights")
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    session = Session.open(source)
    session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 2.0})
    result = session.save(tmp_path / "out")
    out = tmp_path / "out"
    for name, data in files.items():
        assert (out / name).read_bytes() == data, name
    assert (out / "2_Dense" / "model.safetensors").read_bytes() == \
        (source / "2_Dense" / "model.safetensors").read_bytes()
    assert not (out / "onnx" / "model.onnx").exists()
    assert not (out / "tf_model.h5").exists()
    assert not (out / ".git").exists()
    note = next(note for note in result["notes"] if "not copied" in note)
    for name in ("onnx/model.onnx", "tf_model.h5", ".git/"):
        assert name in note
    expected = mlp_state()
    expected["fc1.weight"] = expected["fc1.weight"] * 2
    assert_same_tensors(load_file(str(out / "model.safetensors")), expected)


def _tiny_sentence_transformer(folder: Path) -> None:
    import transformers

    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer
    except ImportError:  # older releases
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.models import Dense, Pooling, Transformer
    bert = folder.parent / "bert"
    bert.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "weights", "edit"]
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(bert / "vocab.txt"))
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=16,
                                     max_position_embeddings=32)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    torch.manual_seed(1)
    modules = [Transformer(str(bert)), Pooling(8), Dense(8, 4)]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))


def test_sentence_transformers_loads_an_edited_folder(tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    source = tmp_path / "minilm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _tiny_sentence_transformer(source)
        expected_model = SentenceTransformer(str(source), device="cpu")
    assert (source / "1_Pooling" / "config.json").is_file()
    recipe = tmp_path / "edit.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "scale", "targets": ["embeddings.word_embeddings.weight"], "value": 3.0}]}))
    out = tmp_path / "edited"
    code = main(["apply", str(recipe), "--input", str(source), "--output", str(out),
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    for path in source.rglob("*"):
        if path.is_file() and (path.name != "model.safetensors" or path.parent != source):
            assert (out / path.relative_to(source)).read_bytes() == path.read_bytes(), path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        edited = SentenceTransformer(str(out), device="cpu")
        with torch.no_grad():
            expected_model[0].auto_model.embeddings.word_embeddings.weight.mul_(3.0)
        sentences = ["hello world", "edit weights"]
        got = edited.encode(sentences, convert_to_tensor=True)
        want = expected_model.encode(sentences, convert_to_tensor=True)
    assert torch.equal(got, want)
