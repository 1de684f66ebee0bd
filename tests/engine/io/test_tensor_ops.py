"""Checkpoint-mode tensor ops and `attach`: exact undo, clear errors, saves afterwards."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from engine.errors import EditError
from engine.recipe import replay
from engine.session import Session
from tests.models import MLP, seeded

from .files import assert_same_tensors, mlp_state, session_tensors, tied_state, write_safetensors


def _events(session):
    seen = []
    session.events.structure_about_to_change.connect(lambda path: seen.append(("about", path)))
    session.events.structure_changed.connect(lambda path: seen.append(("done", path)))
    return seen


def test_rename_one_keeps_position_and_slot():
    session = Session(checkpoint=mlp_state())
    slot = session.document.slot("fc1.bias")
    events = _events(session)
    assert session.apply({"op": "rename", "target": "fc1.bias", "to": "first.bias"}) == [
        ["fc1.bias", "first.bias"]]
    assert session.document.tensor_names() == ["fc1.weight", "first.bias", "fc2.weight", "fc2.bias"]
    assert session.document.slot("first.bias") is slot
    assert events == [("about", ""), ("done", "")]
    session.undo()
    assert session.document.tensor_names() == list(mlp_state())
    assert session.document.slot("fc1.bias") is slot


def test_rename_by_regex_and_its_errors():
    session = Session(checkpoint={f"model.{k}": v for k, v in mlp_state().items()})
    session.apply({"op": "rename", "pattern": r"^model\.", "replacement": ""})
    assert session.document.tensor_names() == list(mlp_state())
    session.apply({"op": "rename", "pattern": r"^fc(\d)\.", "replacement": r"layer\1."})
    assert session.document.tensor_names()[0] == "layer1.weight"
    with pytest.raises(EditError, match="would both be named"):
        session.apply({"op": "rename", "pattern": r"\.(weight|bias)$", "replacement": ""})
    with pytest.raises(EditError, match="changes no name"):
        session.apply({"op": "rename", "pattern": "nothing", "replacement": "x"})
    with pytest.raises(EditError, match="bad regex"):
        session.apply({"op": "rename", "pattern": "(", "replacement": "x"})
    with pytest.raises(EditError, match="either 'target' and 'to'"):
        session.apply({"op": "rename", "target": "a", "pattern": "b"})
    with pytest.raises(EditError, match=r"would both be named 'layer2\.bias'"):
        session.apply({"op": "rename", "target": "layer1.bias", "to": "layer2.bias"})
    assert session.history.position == 2  # the failures left no step


def test_rename_is_refused_in_model_mode():
    with pytest.raises(EditError, match="not available in model mode"):
        Session(seeded(MLP)).apply({"op": "rename", "target": "fc1.bias", "to": "b"})


def test_delete_and_undo_restore_positions():
    session = Session(checkpoint=tied_state())
    deleted = session.apply({"op": "delete", "targets": ["block.*", "lm_head.weight"]})
    assert deleted == ["block.0.weight", "block.0.bias", "block.2.weight", "block.2.bias",
                       "lm_head.weight"]
    assert session.document.tensor_names() == ["embed.weight"]
    assert session.document.tie_groups() == []
    session.undo()
    assert session.document.tensor_names() == list(tied_state())
    assert session.document.tie_groups() == [["embed.weight", "lm_head.weight"]]
    with pytest.raises(EditError, match="'nope' matches no tensor"):
        session.apply({"op": "delete", "targets": ["nope"]})


def test_copy_is_independent_and_stays_lazy(tmp_path):
    path = write_safetensors(tmp_path / "m.safetensors", mlp_state())
    session = Session.open(path)
    session.apply({"op": "copy", "source": "fc1.weight", "to": "fc1.backup"})
    names = session.document.tensor_names()
    assert names.index("fc1.backup") == names.index("fc1.weight") + 1
    assert not session.document.slot("fc1.backup").loaded
    session.apply({"op": "scale", "targets": ["fc1.weight"], "value": 0.0})
    assert torch.equal(session.document.tensor("fc1.backup"), mlp_state()["fc1.weight"])
    with pytest.raises(EditError, match="exists already"):
        session.apply({"op": "copy", "source": "fc1.bias", "to": "fc2.bias"})
    session.save(tmp_path / "out.safetensors")
    saved = load_file(str(tmp_path / "out.safetensors"))
    assert torch.equal(saved["fc1.backup"], mlp_state()["fc1.weight"])
    assert torch.equal(saved["fc1.weight"], torch.zeros(8, 6))


def test_cast_keeps_ties_and_undo_restores_bits():
    session = Session(checkpoint=tied_state())
    before = session_tensors(session)
    changed = session.apply({"op": "cast", "targets": ["*"], "dtype": "bfloat16"})
    assert "lm_head.weight" not in changed  # tied: cast once, through its first name
    assert session.document.tensor_meta("lm_head.weight")[1] == torch.bfloat16
    assert session.document.tie_groups() == [["embed.weight", "lm_head.weight"]]
    session.undo()
    assert_same_tensors(session_tensors(session), before)
    with pytest.raises(EditError, match="unknown dtype 'float7'"):
        session.apply({"op": "cast", "targets": ["*"], "dtype": "float7"})


def test_cast_in_model_mode_keeps_the_parameter():
    model = seeded(MLP)
    weight = model.fc1.weight
    session = Session(model)
    session.apply({"op": "cast", "targets": ["fc1"], "dtype": "float16"})
    assert model.fc1.weight is weight
    assert weight.dtype == torch.float16
    assert weight.requires_grad
    with pytest.raises(EditError, match="must stay floating-point"):
        session.apply({"op": "cast", "targets": ["fc2.weight"], "dtype": "int8"})
    session.undo()
    assert weight.dtype == torch.float32


def test_resize_keeps_overlap_and_fills_by_seeded_initializer():
    session = Session(checkpoint=mlp_state())
    old = mlp_state()["fc2.weight"]
    session.apply({"op": "resize", "target": "fc2.weight", "shape": [6, 5],
                   "method": "normal", "args": {"std": 0.02}, "seed": 7})
    new = session.document.tensor("fc2.weight")
    assert new.shape == (6, 5)
    assert torch.equal(new[:4, :5], old[:4, :5])
    expected = torch.empty(6, 5)
    torch.nn.init.normal_(expected, std=0.02, generator=torch.Generator().manual_seed(7))
    assert torch.equal(new[4:], expected[4:])
    session.undo()
    assert torch.equal(session.document.tensor("fc2.weight"), old)
    with pytest.raises(EditError, match="must have as many"):
        session.apply({"op": "resize", "target": "fc2.weight", "shape": [32]})
    with pytest.raises(EditError, match="unknown initializer"):
        session.apply({"op": "resize", "target": "fc2.weight", "shape": [4, 4],
                       "method": "magic"})


def test_resize_records_its_seed_for_replay():
    first = Session(checkpoint=mlp_state())
    first.apply({"op": "resize", "target": "fc2.bias", "shape": [9], "method": "uniform"})
    second = Session(checkpoint=mlp_state())
    replay(second, first.recipe())
    assert torch.equal(first.document.tensor("fc2.bias"), second.document.tensor("fc2.bias"))


def test_attach_switches_to_model_mode_and_back():
    state = {f"module.{k}": v for k, v in mlp_state().items()}
    session = Session(checkpoint=state)
    checkpoint = session.checkpoint
    events = _events(session)
    report = session.apply({"op": "attach", "arch": "tests/models.py:MLP",
                            "strip_prefix": "module."}, trust=True)
    assert session.mode == "model"
    assert report["loaded"] == list(mlp_state())
    assert events == [("about", ""), ("done", "")]
    model = session.model
    assert_same_tensors(model.state_dict(), mlp_state())
    session.apply({"op": "freeze", "targets": ["fc1"]})
    session.undo()
    session.undo()
    assert session.mode == "checkpoint"
    assert session.checkpoint is checkpoint
    session.redo()
    assert session.model is model


def test_attach_reports_and_refuses_what_does_not_fit():
    state = mlp_state()
    state["extra"] = torch.ones(1)
    del state["fc2.bias"]
    session = Session(checkpoint=state)
    with pytest.raises(EditError, match=r"missing .*fc2\.bias.*strict"):
        session.apply({"op": "attach", "arch": "tests/models.py:MLP", "strict": True},
                      trust=True)
    assert session.mode == "checkpoint"
    report = session.apply({"op": "attach", "arch": "tests/models.py:MLP"}, trust=True)
    assert report["missing"] == ["fc2.bias"]
    assert report["unexpected"] == ["extra"]
    other = Session(checkpoint={"x.weight": torch.ones(2)})
    with pytest.raises(EditError, match="no tensor of the checkpoint fits"):
        other.apply({"op": "attach", "arch": "tests/models.py:MLP"}, trust=True)
    with pytest.raises(EditError, match=r"attach\.arch: .*no such file"):
        other.apply({"op": "attach", "arch": "missing.py:Net"}, trust=True)


def test_attach_then_save_and_replay(tmp_path):
    path = write_safetensors(tmp_path / "m.safetensors", mlp_state())
    session = Session.open(path)
    session.apply({"op": "attach", "arch": "tests/models.py:MLP"}, trust=True)
    session.apply({"op": "scale", "targets": ["fc1.bias"], "value": 2.0})
    session.save(tmp_path / "out.pt")
    saved = torch.load(tmp_path / "out.pt", weights_only=True)
    assert torch.equal(saved["fc1.bias"], mlp_state()["fc1.bias"] * 2)
    fresh = Session.open(path)
    replay(fresh, session.recipe(), trust=True)
    assert fresh.mode == "model"
    assert_same_tensors(fresh.model.state_dict(), session.model.state_dict())


def test_set_init_and_tie_work_in_checkpoint_mode(tmp_path):
    path = write_safetensors(tmp_path / "m.safetensors", mlp_state())
    session = Session.open(path)
    session.apply({"op": "set", "target": "fc1.bias", "index": "0:2", "value": 1.5})
    assert session.document.tensor("fc1.bias")[:2].tolist() == [1.5, 1.5]
    session.apply({"op": "init", "targets": ["fc2.weight"], "method": "kaiming_uniform",
                   "seed": 3})
    expected = torch.empty(4, 8)
    torch.nn.init.kaiming_uniform_(expected, generator=torch.Generator().manual_seed(3))
    assert torch.equal(session.document.tensor("fc2.weight"), expected)
    session.apply({"op": "copy", "source": "fc2.bias", "to": "fc2.bias_copy"})
    session.apply({"op": "tie", "target": "fc2.bias_copy", "source": "fc2.bias"})
    assert session.document.tie_groups() == [["fc2.bias", "fc2.bias_copy"]]
    session.save(tmp_path / "tied.safetensors")
    assert Session.open(tmp_path / "tied.safetensors").document.tie_groups() == [
        ["fc2.bias", "fc2.bias_copy"]]
    for _ in range(4):
        session.undo()
    assert_same_tensors(session_tensors(session), mlp_state())


def test_a_read_tensor_ties_to_one_not_read_yet(tmp_path):
    from safetensors.torch import save_file

    save_file({"a": torch.ones(3), "b": torch.zeros(3)}, str(tmp_path / "two.safetensors"))
    session = Session.open(tmp_path / "two.safetensors")
    session.apply({"op": "scale", "targets": ["a"], "value": 2.0})  # "a" is read, "b" is not
    session.apply({"op": "tie", "target": "b", "source": "a"})
    assert session.document.tie_groups() == [["a", "b"]]
    assert torch.equal(session.document.tensor("b"), torch.full((3,), 2.0))
