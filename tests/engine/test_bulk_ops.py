"""Bulk edits do what PyTorch's own bulk calls do: `model.half()` / `model.to(dtype)` change
floating-point tensors only, whatever a glob or a module name also matches."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from safetensors.torch import load_file, save_file

from engine import Session
from engine.errors import EditError
from tests.conftest import ROOT
from tests.engine.io.files import mixed_tensors, write_safetensors
from tests.models import SmallCNN

FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float64]


def _half_like(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.dtype]:
    """What `module.to(dtype)` leaves: floating-point tensors cast, the others kept."""
    return {name: dtype if tensor.is_floating_point() else tensor.dtype
            for name, tensor in state.items()}


@pytest.mark.parametrize(("dtype", "arch"), [
    (torch.float16, "torchvision:resnet18"),
    (torch.bfloat16, f"{ROOT / 'tests' / 'models.py'}:SmallCNN"),
    (torch.float64, f"{ROOT / 'tests' / 'models.py'}:SmallCNN")])
def test_cast_everything_in_model_mode_is_model_to(tmp_path, dtype, arch):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4) if arch.startswith("torchvision") \
        else SmallCNN()
    path = tmp_path / "r.safetensors"
    save_file(model.state_dict(), str(path))
    arch_args = {"num_classes": 4} if arch.startswith("torchvision") else None
    session = Session.open(path, arch=arch, arch_args=arch_args)
    session.apply({"op": "cast", "targets": ["*"], "dtype": str(dtype).removeprefix("torch.")})
    session.save(tmp_path / "out.safetensors")
    written = load_file(str(tmp_path / "out.safetensors"))
    expected = copy.deepcopy(model).to(dtype).state_dict()
    assert {name: t.dtype for name, t in written.items()} == \
        {name: t.dtype for name, t in expected.items()}
    assert {t.dtype for name, t in written.items() if name.endswith("num_batches_tracked")} \
        == {torch.int64}
    for name, tensor in expected.items():
        assert torch.equal(written[name], tensor), name
    # The loader its user uses, strictly, on a model of the cast dtype.
    copy.deepcopy(model).to(dtype).load_state_dict(written)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_cast_everything_in_checkpoint_mode_keeps_integer_and_bool(tmp_path, dtype):
    tensors = mixed_tensors()
    session = Session.open(write_safetensors(tmp_path / "m.safetensors", tensors))
    changed = session.apply({"op": "cast", "targets": "*",
                             "dtype": str(dtype).removeprefix("torch.")})
    assert sorted(changed) == sorted(name for name, t in tensors.items()
                                     if t.is_floating_point() and t.dtype != dtype)
    session.save(tmp_path / "out.safetensors")
    written = load_file(str(tmp_path / "out.safetensors"))
    assert {name: t.dtype for name, t in written.items()} == _half_like(tensors, dtype)
    for name in ("b.steps", "b.mask", "c.bytes"):
        assert torch.equal(written[name], tensors[name])


def test_a_tensor_named_itself_is_cast_whatever_its_dtype(tmp_path):
    session = Session.open(write_safetensors(tmp_path / "m.safetensors"))
    session.apply({"op": "cast", "targets": ["b.steps", "*"], "dtype": "float64"})
    assert session.document.tensor_meta("b.steps")[1] == torch.float64
    assert session.document.tensor_meta("a.weight")[1] == torch.float64
    assert session.document.tensor_meta("b.mask")[1] == torch.bool  # the glob only casts floats
    with pytest.raises(EditError, match=r"cast\.targets: 'c\.byt\*' matches no floating-point "
                                        r"tensor \(name integer or bool tensors one by one"):
        session.apply({"op": "cast", "targets": ["c.byt*"], "dtype": "float16"})


def test_cast_of_a_hf_checkpoint_keeps_position_ids(tmp_path):
    from tests.engine.io import hf_folders

    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    session = Session.open(folder)
    session.apply({"op": "cast", "targets": ["*"], "dtype": "float16"})
    session.save(tmp_path / "out")
    written = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert written["embeddings.position_ids"].dtype == torch.int64
    assert written["embeddings.word_embeddings.weight"].dtype == torch.float16
    model, info = hf_folders.from_pretrained(tmp_path / "out")
    assert not info["missing_keys"]
    assert torch.equal(model.embeddings.word_embeddings.weight,
                       written["embeddings.word_embeddings.weight"].float())


@pytest.mark.parametrize("op", ["scale", "add"])
def test_scale_and_add_over_a_glob_skip_integer_tensors(tmp_path, op):
    tensors = mixed_tensors()
    session = Session.open(write_safetensors(tmp_path / "m.safetensors", tensors))
    session.apply({"op": op, "targets": ["*"], "value": 2.0})
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            expected = tensor * 2.0 if op == "scale" else tensor + 2.0
        else:
            expected = tensor
        assert torch.equal(session.document.tensor(name), expected), name
    with pytest.raises(EditError, match=r"b\.steps"):
        session.apply({"op": op, "targets": ["b.steps"], "value": 2.0})


def test_init_over_a_glob_skips_integer_buffers():
    torch.manual_seed(0)
    session = Session(torchvision.models.resnet18(num_classes=3))
    names = session.apply({"op": "init", "targets": ["layer1.0.bn1.*"], "method": "zeros"})
    assert "layer1.0.bn1.num_batches_tracked" not in names
    assert "layer1.0.bn1.running_var" in names
