"""History: byte budget with deltas, dropped steps stay in the recipe, clean index, go_to."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine import EditError, Session
from tests.models import MLP, seeded


def big_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 256), nn.Linear(256, 256))  # 256 KiB per weight


def test_slice_edit_stores_only_the_slice():
    session = Session(big_model())
    session.apply({"op": "set", "target": "0.weight", "index": "3, 4", "value": 1.0})
    assert session.history.nbytes == 4
    session.apply({"op": "set", "target": "0.weight", "index": ":2", "value": 1.0})
    assert session.history.nbytes == 4 + 2 * 256 * 4


def test_whole_tensor_init_stores_one_copy():
    session = Session(big_model())
    session.apply({"op": "init", "targets": ["0.weight"], "method": "zeros"})
    assert session.history.nbytes == 256 * 256 * 4


def test_budget_drops_oldest_steps_with_a_notice_and_keeps_the_recipe():
    session = Session(big_model(), history_budget=300 * 1024)
    notices = []
    session.events.notice.connect(notices.append)
    session.apply({"op": "init", "targets": ["0.weight"], "method": "zeros"})
    session.apply({"op": "init", "targets": ["1.weight"], "method": "ones"})
    assert session.history.labels == ["Init 1.weight (ones)"]
    assert "can no longer be undone" in notices[0]
    assert [edit["targets"] for edit in session.recipe()] == [["0.weight"], ["1.weight"]]
    session.undo()
    assert not session.can_undo
    assert torch.all(session.model[0].weight == 0), "a dropped step stays applied"


def test_set_history_budget_drops_immediately():
    session = Session(big_model())
    session.apply({"op": "init", "targets": ["0.weight"], "method": "zeros"})
    session.apply({"op": "freeze", "targets": ["1"]})
    session.set_history_budget(1024)
    assert session.history.labels == ["Freeze 1"]


def test_clean_index_tracks_the_saved_state():
    session = Session(seeded(MLP))
    assert not session.is_modified
    session.apply({"op": "freeze", "targets": ["fc1"]})
    assert session.is_modified
    session.mark_saved()
    assert not session.is_modified
    session.undo()
    assert session.is_modified
    session.redo()
    assert not session.is_modified
    session.undo()
    session.apply({"op": "freeze", "targets": ["fc2"]})  # the saved state is now unreachable
    assert session.is_modified
    session.undo()
    assert session.is_modified


def test_the_clean_position_counts_like_the_position():
    session = Session(big_model(), history_budget=300 * 1024)
    history = session.history
    assert history.clean_position == 0  # opened: the saved state is the first row
    session.apply({"op": "freeze", "targets": ["0"]})
    session.mark_saved()
    assert history.clean_position == 1 == history.position
    session.apply({"op": "init", "targets": ["0.weight"], "method": "zeros"})
    session.apply({"op": "init", "targets": ["1.weight"], "method": "ones"})  # drops two
    assert len(history.dropped) == 2
    assert history.clean_position is None  # the saved state was dropped
    session.mark_saved()
    assert history.clean_position == 1
    session.undo()
    session.apply({"op": "freeze", "targets": ["1"]})  # the saved state's branch is gone
    assert history.clean_position is None


def test_go_to_and_labels():
    session = Session(seeded(MLP))
    for target in ("fc1", "fc2"):
        session.apply({"op": "freeze", "targets": [target]})
    assert session.history.undo_label == "Freeze fc2"
    session.go_to(0)
    assert session.history.redo_label == "Freeze fc1"
    assert all(p.requires_grad for p in session.model.parameters())
    session.go_to(2)
    assert not any(p.requires_grad for p in session.model.parameters())
    with pytest.raises(EditError, match="out of range"):
        session.go_to(5)
    session.go_to(1)
    assert session.recipe() == [{"op": "freeze", "targets": ["fc1"]}]


def test_events_are_emitted_for_values_flags_structure_and_history():
    session = Session(seeded(MLP))
    seen = []
    session.events.tensors_changed.connect(lambda names: seen.append(("values", names)))
    session.events.flags_changed.connect(lambda names: seen.append(("flags", names)))
    session.events.structure_about_to_change.connect(lambda path: seen.append(("about", path)))
    session.events.structure_changed.connect(lambda path: seen.append(("changed", path)))
    session.events.history_changed.connect(lambda: seen.append(("history",)))
    session.apply({"op": "set", "target": "fc1.bias", "value": 0.0})
    assert seen == [("values", ["fc1.bias"]), ("history",)]
    seen.clear()
    session.apply({"op": "freeze", "targets": ["fc2"]})
    assert seen == [("flags", ["fc2.bias", "fc2.weight"]), ("history",)]
    seen.clear()
    session.apply({"op": "replace", "target": "fc2", "module": {"type": "Identity"}})
    assert seen == [("about", "fc2"), ("changed", "fc2"), ("history",)]
    seen.clear()
    session.undo()
    assert seen == [("about", "fc2"), ("changed", "fc2"), ("history",)]


def test_busy_session_refuses_edits():
    session = Session(seeded(MLP))
    with session.busy("test training"):
        with pytest.raises(EditError, match="busy: test training"):
            session.apply({"op": "freeze", "targets": ["fc1"]})
        assert not session.can_undo
    session.apply({"op": "freeze", "targets": ["fc1"]})


def test_a_failing_view_does_not_stop_other_views():
    session = Session(seeded(MLP))
    calls = []

    def broken(_names):
        raise RuntimeError("view bug")

    session.events.tensors_changed.connect(broken)
    session.events.tensors_changed.connect(calls.append)
    with pytest.raises(RuntimeError, match="view bug"):
        session.apply({"op": "set", "target": "fc1.bias", "value": 1.0})
    assert calls == [["fc1.bias"]]
    assert session.history.labels == ["Set fc1.bias"], "the edit is recorded all the same"
    session.events.tensors_changed.disconnect(broken)
    session.undo()
    assert not torch.all(session.model.fc1.bias == 1.0)


def test_structure_change_under_a_shared_module_is_told_for_every_path():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    model = nn.Sequential(block, nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
    session = Session(model)
    session.apply({"op": "tie", "target": "1", "source": "0"})
    pairs = []
    session.events.structure_about_to_change.connect(lambda path: pairs.append(("about", path)))
    session.events.structure_changed.connect(lambda path: pairs.append(("changed", path)))
    session.apply({"op": "replace", "target": "1.0", "module": {"type": "Identity"}})
    assert pairs == [("about", "1.0"), ("changed", "1.0"), ("about", "0.0"), ("changed", "0.0")]
    assert isinstance(model[0][0], nn.Identity)
