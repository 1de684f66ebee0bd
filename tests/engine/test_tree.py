"""engine.tree: the Qt-free lazy index behind the GUI's tree."""

from __future__ import annotations

import torch
from torch import nn

from engine import Session
from engine.tree import TreeIndex, ancestors
from tests.models import SmallCNN, TiedLM, seeded


def test_ancestors_nearest_first():
    assert ancestors("a.b.c") == ["a.b", "a", ""]
    assert ancestors("") == []


def test_model_levels_list_modules_then_parameters_then_buffers():
    tree = TreeIndex(Session(seeded(SmallCNN)))
    assert tree.child_names("") == ["features", "classifier", "scratch"]
    assert tree.child_names("features.1") == [
        "features.1.weight", "features.1.bias", "features.1.running_mean",
        "features.1.running_var", "features.1.num_batches_tracked"]
    assert tree.kind("features.1.running_mean") == "buffer"
    assert tree.kind("features.1") == "module"
    assert not tree.has_children("features.2")  # ReLU


def test_levels_are_built_only_when_asked():
    tree = TreeIndex(Session(seeded(SmallCNN)))
    assert tree.has_children("features")
    assert tree._current._children == {}  # has_children built nothing
    tree.child_names("")
    assert set(tree._current._children) == {""}


def test_module_facts_count_each_tensor_once():
    session = Session(seeded(TiedLM))
    tree = TreeIndex(session)
    root = tree.info("")
    assert root.parameters == sum(p.numel() for p in session.model.parameters())
    assert root.type_name == "TiedLM"
    assert tree.info("lm_head.weight").tied_with == ("embed.weight",)
    assert tree.info("embed").trainable == "yes"


def test_facts_follow_invalidation():
    session = Session(seeded(SmallCNN))
    tree = TreeIndex(session)
    assert tree.info("features").trainable == "yes"
    session.apply({"op": "freeze", "targets": ["features.0"]})
    assert tree.info("features").trainable == "yes"  # cached until told
    dropped = tree.invalidate_names(["features.0.weight", "features.0.bias"])
    assert dropped == {"features.0.weight", "features.0.bias", "features.0", "features", ""}
    assert tree.info("features").trainable == "partial"
    assert tree.info("features.0").trainable == "no"


def test_checkpoint_prefix_tree_and_counts():
    session = Session(checkpoint={"a.b.w": torch.zeros(2, 3), "a.c": torch.zeros(4),
                                  "a": torch.zeros(1, dtype=torch.int64)})
    tree = TreeIndex(session)
    assert tree.child_names("") == ["a"]
    assert tree.child_names("a") == ["a.b", "a.c"]
    assert tree.kind("a") == "tensor"  # a tensor that is also a prefix
    assert tree.info("a").has_children
    assert tree.info("a.b").parameters == 6
    assert tree.info("a.b").kind == "group"
    assert tree.info("a.b.w").shape == (2, 3)
    assert tree.exists("a.b.w")
    assert not tree.exists("a.x")


def test_structure_invalidation_rebuilds_a_subtree():
    session = Session(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))
    tree = TreeIndex(session)
    assert tree.child_names("0") == ["0.weight", "0.bias"]
    session.apply({"op": "replace", "target": "0", "module": {"type": "Identity"}})
    tree.invalidate_subtree("0")
    assert tree.child_names("0") == []
    assert tree.info("0").type_name == "Identity"
    assert tree.info("").parameters == 0


def test_numbered_checkpoint_levels_are_in_numeric_order():
    names = [f"layers.{i}.w" for i in (0, 1, 10, 11, 2, 3)] + ["layers.x.w"]
    tree = TreeIndex(Session(checkpoint={name: torch.zeros(1) for name in names[:-1]}))
    assert tree.child_names("layers") == [f"layers.{i}" for i in (0, 1, 2, 3, 10, 11)]
    mixed = TreeIndex(Session(checkpoint={name: torch.zeros(1) for name in names}))
    assert mixed.child_names("layers")[-1] == "layers.x"  # file order when not all numbers


def test_checkpoint_ties_follow_flag_events_incrementally():
    session = Session(checkpoint={"a": torch.zeros(2), "b": torch.ones(2), "c": torch.ones(2),
                                  "d": torch.zeros(3)})
    tree = TreeIndex(session)
    events: list[list[str]] = []
    session.events.flags_changed.connect(events.append)

    def agree():
        fresh = TreeIndex(session)
        for name in session.document.tensor_names():
            expected = fresh._current._tensor_tied_with(name)
            assert tree._current._tensor_tied_with(name) == expected, name

    agree()
    for spec in ({"op": "tie", "target": "b", "source": "a"},
                 {"op": "tie", "target": "c", "source": "a"},
                 {"op": "untie", "target": "a"}):
        session.apply(spec)
        tree.invalidate_ties(events[-1])
        agree()
    assert tree._current._tensor_tied_with("b") == ("c",)
    while session.history.can_undo:
        session.undo()
        tree.invalidate_ties(events[-1])
        agree()
