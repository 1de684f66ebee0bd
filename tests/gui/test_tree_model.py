"""The lazy tree model: Qt's model tester on several documents, events, laziness, filter."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QModelIndex, Qt
from torch import nn

from engine import Session
from engine.filtering import FilterResult
from gui.tree_model import COLUMNS, PARAMETERS, TIES, TRAINABLE, TYPE, TreeModel
from tests.models import SmallCNN, TiedLM, seeded


def deep_sequential(depth: int = 12) -> nn.Module:
    model: nn.Module = nn.Linear(3, 3)
    for _ in range(depth):
        model = nn.Sequential(model, nn.ReLU())
    return model


def checkpoint_session() -> Session:
    shared = torch.randn(4, 3)
    return Session(checkpoint={
        "encoder.layers.0.weight": torch.randn(3, 3),
        "encoder.layers.0.bias": torch.zeros(3),
        "encoder.layers.1.weight": torch.randn(3, 3),
        "decoder.weight": shared,
        "lm_head.weight": shared,
        "step": torch.tensor(7),
        "step.extra": torch.tensor([1, 2]),  # a name that is a tensor and a prefix
    })


def fetch_all(model: TreeModel, parent=None) -> list[str]:
    """Expand every row (the model tester does this too) and return the paths in order."""
    parent = parent or QModelIndex()
    while model.canFetchMore(parent):
        model.fetchMore(parent)
    paths = []
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        paths.append(model.path_of(index))
        paths.extend(fetch_all(model, index))
    return paths


@pytest.mark.parametrize("make", [
    lambda: Session(seeded(TiedLM)),
    lambda: Session(deep_sequential()),
    lambda: Session(seeded(SmallCNN)),
    checkpoint_session,
], ids=["tied", "deep-sequential", "cnn", "checkpoint"])
def test_model_tester_accepts_the_tree(qtmodeltester, make):
    model = TreeModel(make())
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(TreeModel(make()))  # Qt's own C++ tester as well
    assert model.rowCount() > 0


def test_model_tester_on_resnet18(qtmodeltester):
    torchvision = pytest.importorskip("torchvision")
    session = Session(torchvision.models.resnet18())
    model = TreeModel(session)
    qtmodeltester.check(model, force_py=True)
    paths = fetch_all(model)
    assert "layer4.1.bn2.running_var" in paths
    assert len(paths) == 1 + len(list(session.model.named_modules())) - 1 + len(
        session.document.tensor_names())


def test_model_mode_rows_and_columns():
    session = Session(seeded(TiedLM))
    model = TreeModel(session)
    paths = fetch_all(model)
    # The model itself is the one top row; children list modules, then parameters.
    assert paths[0] == ""
    assert paths[1:4] == ["embed", "embed.weight", "block"]
    info = model.info_of(model.index_for_path("lm_head.weight"))
    assert info.tied_with == ("embed.weight",)
    assert model.data(model.index(0, TYPE)) == "TiedLM"
    total = sum(p.numel() for p in session.model.parameters())
    assert model.data(model.index(0, PARAMETERS)) == f"{total:,}"
    assert model.data(model.index(0, TRAINABLE)) == "yes"
    head = model.index_for_path("lm_head.weight")
    assert model.data(head.sibling(head.row(), TIES)) == "embed.weight"
    assert model.headerData(TIES, Qt.Orientation.Horizontal) == COLUMNS[TIES]


def test_checkpoint_mode_prefix_tree():
    model = TreeModel(checkpoint_session())
    paths = fetch_all(model)
    assert paths[:3] == ["encoder", "encoder.layers", "encoder.layers.0"]
    assert "step.extra" in paths
    step = model.info_of(model.index_for_path("step"))
    assert step.kind == "tensor"
    assert step.has_children
    encoder = model.info_of(model.index_for_path("encoder"))
    assert encoder.parameters == 9 + 3 + 9
    assert model.info_of(model.index_for_path("decoder.weight")).tied_with == ("lm_head.weight",)


def test_rows_are_built_one_level_at_a_time():
    session = Session(deep_sequential(30))
    model = TreeModel(session)
    model.fetchMore(QModelIndex())
    assert model.materialized_count() == 1
    root = model.index(0, 0)
    assert model.hasChildren(root)
    assert model.rowCount(root) == 0  # nothing built before a view asks
    model.fetchMore(root)
    assert model.materialized_count() == 3


def test_wide_container_is_fetched_in_batches():
    from gui.tree_model import BATCH

    session = Session(nn.Sequential(*[nn.Identity() for _ in range(BATCH * 2 + 5)]))
    model = TreeModel(session)
    root = model.index_for_path("")
    model.fetchMore(root)
    assert model.rowCount(root) == BATCH
    assert model.canFetchMore(root)
    assert model.index_for_path(str(BATCH * 2 + 1)).isValid()  # fetched on the way
    assert model.rowCount(root) == BATCH * 2 + 5


def test_value_and_flag_events_update_single_rows(qtmodeltester):
    session = Session(seeded(SmallCNN))
    model = TreeModel(session)
    qtmodeltester.check(model, force_py=True)
    fetch_all(model)
    changed: list[tuple[str, int, int]] = []
    model.dataChanged.connect(lambda first, last, roles=(): changed.append(
        (model.path_of(first), first.row(), last.row())))
    session.apply({"op": "freeze", "targets": ["features.0.weight"]})
    # One row each: the tensor and its ancestors (whose trainable state changes).
    assert sorted(path for path, _, _ in changed) == ["", "features", "features.0",
                                                     "features.0.weight"]
    assert all(first == last for _, first, last in changed)
    weight = model.index_for_path("features.0.weight")
    features = model.index_for_path("features")
    assert model.data(weight.sibling(weight.row(), TRAINABLE)) == "no"
    assert model.data(features.sibling(features.row(), TRAINABLE)) == "partial"
    changed.clear()
    session.apply({"op": "set", "target": "classifier.2.bias", "value": 0.5})
    assert "classifier.2.bias" in {path for path, _, _ in changed}
    assert "features.0.weight" not in {path for path, _, _ in changed}
    session.undo()
    session.undo()
    assert model.data(weight.sibling(weight.row(), TRAINABLE)) == "yes"


def test_structure_edits_and_undo_keep_the_model_consistent(qtmodeltester):
    session = Session(seeded(SmallCNN))
    model = TreeModel(session)
    before = fetch_all(model)
    qtmodeltester.check(model, force_py=True)
    session.apply({"op": "replace", "target": "classifier.2",
                   "module": {"type": "Sequential", "layers": [
                       {"type": "Linear", "out_features": 3}, {"type": "ReLU"},
                       {"type": "Linear", "out_features": 2}]}})
    after = fetch_all(model)
    assert "classifier.2.0.weight" in after
    assert "classifier.2.weight" not in after
    info = model.info_of(model.index_for_path("classifier.2"))
    assert info.type_name == "Sequential"
    session.undo()
    assert fetch_all(model) == before
    assert model.info_of(model.index_for_path("classifier.2")).type_name == "Linear"


def test_module_tie_is_a_structure_change(qtmodeltester):
    session = Session(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    model = TreeModel(session)
    fetch_all(model)
    qtmodeltester.check(model, force_py=True)
    session.apply({"op": "tie", "target": "1", "source": "0"})
    fetch_all(model)
    assert model.info_of(model.index_for_path("1")).tied_with == ("0",)
    assert model.info_of(model.index_for_path("1.weight")).tied_with == ("0.weight",)
    session.undo()
    fetch_all(model)
    assert model.info_of(model.index_for_path("1.weight")).tied_with == ()


def test_filter_shows_matches_and_their_ancestors(qtmodeltester):
    session = Session(seeded(SmallCNN))
    model = TreeModel(session)
    model.set_filter(FilterResult.build(session, "type:BatchNorm2d"))
    qtmodeltester.check(model, force_py=True)
    paths = fetch_all(model)
    assert "features.1" in paths
    assert "features.1.running_mean" in paths  # everything below a match
    assert "features.0" not in paths
    assert "classifier" not in paths
    model.set_filter(FilterResult.build(session, "*.bias"))
    paths = fetch_all(model)
    assert set(p for p in paths if p.endswith("bias")) == {
        n for n in session.document.tensor_names() if n.endswith("bias")}
    assert "features.1.weight" not in paths
    model.set_filter(FilterResult.build(session, "CLASSIFIER"))
    assert "classifier.2.weight" in fetch_all(model)
    model.set_filter(None)
    assert len(fetch_all(model)) > 20


def test_filter_follows_structure_edits():
    session = Session(seeded(SmallCNN))
    model = TreeModel(session)
    model.set_filter(FilterResult.build(session, "type:Linear"))
    assert "classifier.2" in fetch_all(model)
    session.apply({"op": "replace", "target": "classifier.2", "module": {"type": "Identity"}})
    assert "classifier.2" not in fetch_all(model)
    session.undo()
    assert "classifier.2" in fetch_all(model)


def test_model_disconnects_from_the_session():
    session = Session(seeded(SmallCNN))
    model = TreeModel(session)
    assert len(session.events.tensors_changed) == 1
    model.close()
    assert len(session.events.tensors_changed) == 0
    assert model.rowCount() == 0
