"""`diff`: added, removed, renamed, reshaped, recast and changed tensors."""

from __future__ import annotations

import math

import torch

from engine import diff
from engine.diff import diff_files, diff_sessions
from engine.session import Session

from .files import mlp_state, tied_state


def test_identical_documents():
    result = diff_sessions(Session(checkpoint=mlp_state()), Session(checkpoint=mlp_state()))
    assert result["identical"]
    assert result["unchanged"] == 4


def test_every_kind_of_difference():
    a = {"same": torch.ones(3), "gone": torch.zeros(2), "old_name": torch.arange(4.0),
         "grown": torch.ones(2, 2), "recast": torch.tensor([1.0, 2.5]),
         "edited": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    b = {"same": torch.ones(3), "new": torch.full((5,), 9.0), "new_name": torch.arange(4.0),
         "grown": torch.ones(3, 2), "recast": torch.tensor([1.0, 2.5]).half(),
         "edited": torch.tensor([1.0, 2.5, 3.0, 0.0])}
    result = diff_sessions(Session(checkpoint=a), Session(checkpoint=b))
    assert not result["identical"]
    assert result["removed"] == ["gone"]
    assert result["added"] == ["new"]
    assert result["renamed"] == [{"from": "old_name", "to": "new_name"}]
    assert result["shape_changed"] == [{"name": "grown", "a_shape": [2, 2], "b_shape": [3, 2],
                                        "a_dtype": "float32", "b_dtype": "float32"}]
    assert result["dtype_changed"] == [{"name": "recast", "a_dtype": "float32",
                                        "b_dtype": "float16", "changed_elements": 0,
                                        "max_abs_diff": 0.0}]
    assert result["changed"] == [{"name": "edited", "numel": 4, "changed_elements": 2,
                                  "max_abs_diff": 4.0}]
    assert result["unchanged"] == 1


def test_nan_in_the_same_place_is_equal_and_new_nan_is_undefined():
    a = Session(checkpoint={"x": torch.tensor([float("nan"), 1.0])})
    same = diff_sessions(a, Session(checkpoint={"x": torch.tensor([float("nan"), 1.0])}))
    assert same["identical"]
    other = diff_sessions(a, Session(checkpoint={"x": torch.tensor([float("nan"), math.inf])}))
    assert other["changed"] == [{"name": "x", "numel": 2, "changed_elements": 1,
                                 "max_abs_diff": None}]


def test_chunked_comparison_counts_every_chunk(monkeypatch):
    monkeypatch.setattr(diff, "CHUNK_ELEMENTS", 7)
    a = torch.zeros(100)
    b = a.clone()
    b[[3, 50, 99]] = torch.tensor([1.0, -2.0, 0.5])
    result = diff_sessions(Session(checkpoint={"t": a}), Session(checkpoint={"t": b}))
    assert result["changed"][0]["changed_elements"] == 3
    assert result["changed"][0]["max_abs_diff"] == 2.0


def test_model_against_checkpoint_and_files(tmp_path):
    from tests.models import TiedLM, seeded

    model_session = Session(seeded(TiedLM))
    result = diff_sessions(model_session, Session(checkpoint=tied_state()))
    assert result["identical"]
    Session(checkpoint=tied_state()).save(tmp_path / "a.safetensors")
    edited = Session(checkpoint=tied_state())
    edited.apply({"op": "add", "targets": ["block.0.bias"], "value": 1.0})
    edited.save(tmp_path / "b.pt")
    result = diff_files(tmp_path / "a.safetensors", tmp_path / "b.pt")
    assert [item["name"] for item in result["changed"]] == ["block.0.bias"]
    assert abs(result["changed"][0]["max_abs_diff"] - 1.0) < 1e-6


def test_unread_file_tensors_are_compared_in_chunks_and_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(diff, "CHUNK_ELEMENTS", 5)
    a = {"t": torch.arange(23.0), "same": torch.ones(11), "moved": torch.arange(12.0)}
    b = {"t": torch.arange(23.0), "same": torch.ones(11), "renamed": torch.arange(12.0)}
    b["t"][[0, 12, 22]] = -1.0
    Session(checkpoint=a).save(tmp_path / "a.safetensors")
    Session(checkpoint=b).save(tmp_path / "b.safetensors")
    left, right = Session.open(tmp_path / "a.safetensors"), Session.open(tmp_path / "b.safetensors")
    result = diff_sessions(left, right)
    assert result["changed"] == [{"name": "t", "numel": 23, "changed_elements": 3,
                                  "max_abs_diff": 23.0}]
    assert result["renamed"] == [{"from": "moved", "to": "renamed"}]
    assert not any(slot.loaded for slot in left.checkpoint.entries.values())
