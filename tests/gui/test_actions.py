"""Every edit action driven through the GUI: the engine changes; undo restores it exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from engine import Session
from gui.tree_model import TRAINABLE
from tests.gui.helpers import assert_tree_agrees, round_trip
from tests.models import SmallCNN, TiedLM, seeded


@pytest.fixture
def cnn_window(make_window):
    return make_window(Session(seeded(SmallCNN)))


def test_set_value_through_the_dialog(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features.0.bias"])
    dialogs.answer(lambda d: d.choose("value", "0.25"))

    def changed():
        assert torch.all(window.session.document.tensor("features.0.bias") == 0.25)

    round_trip(window, window.edit_actions.set_action.trigger, changed)
    assert dialogs.errors == []


def test_set_on_several_tensors_is_one_step(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features.0.bias", "classifier.2.bias"])
    dialogs.answer(lambda d: d.choose("expr", "x * 0 + 1"))

    def changed():
        assert torch.all(window.session.document.tensor("classifier.2.bias") == 1)
        assert torch.all(window.session.document.tensor("features.0.bias") == 1)
        assert window.history_panel.count() == 2  # the opened state and one step

    round_trip(window, window.edit_actions.set_action.trigger, changed)


def test_set_region_with_random_expression_and_seed(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["classifier.2.weight"])

    def fill(dialog):
        dialog.choose("expr", "randn_like(x)")
        dialog.set_field("index", "0, :3")
        dialog.set_field("seed", "7")

    dialogs.answer(fill)
    original = window.session.document.tensor("classifier.2.weight").detach().clone()

    def changed():
        now = window.session.document.tensor("classifier.2.weight")
        assert not torch.equal(now[0, :3], original[0, :3])
        assert torch.equal(now[1:], original[1:])
        assert window.session.recipe()[-1]["seed"] == 7

    round_trip(window, window.edit_actions.set_action.trigger, changed)


def test_scale_and_add(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features.3"])
    weight = window.session.document.tensor("features.3.weight").detach().clone()
    dialogs.answer(lambda d: d.set_field("value", "2"))
    round_trip(window, window.edit_actions.scale_action.trigger, lambda: torch.testing.assert_close(
        window.session.document.tensor("features.3.weight"), weight * 2, rtol=0, atol=0))
    dialogs.answer(lambda d: d.set_field("value", "-0.5"))
    round_trip(window, window.edit_actions.add_action.trigger, lambda: torch.testing.assert_close(
        window.session.document.tensor("features.3.weight"), weight - 0.5, rtol=0, atol=0))


def test_init_dialog_builds_fields_from_the_signature(cnn_window, dialogs):
    from gui.dialogs.init_dialog import InitDialog

    dialog = InitDialog(cnn_window.session, ["features.0"])
    dialog.set_method("kaiming_normal")
    assert [field.name for field in dialog.arg_fields] == ["a", "mode", "nonlinearity"]
    dialog.set_method("normal")
    assert [field.name for field in dialog.arg_fields] == ["mean", "std"]
    dialog.set_method("constant")
    assert [field.name for field in dialog.arg_fields] == ["val"]
    assert not dialog.seed_box.isEnabled()  # constant is not random
    dialog.accept()  # `val` is required: refused, with a message beside it
    assert dialog.result() == 0
    assert dialog.arg_fields[0].error_text() == "val: required"
    dialog.deleteLater()


def test_init_a_subtree_with_arguments_and_seed(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features.3"])

    def fill(dialog):
        dialog.set_method("normal")
        dialog.set_argument("std", "0.5")
        dialog.set_field("seed", "123")

    dialogs.answer(fill)
    expected = torch.empty(6, 4, 3, 3)
    generator = torch.Generator().manual_seed(123)
    nn.init.normal_(expected, std=0.5, generator=generator)

    def changed():
        assert torch.equal(window.session.document.tensor("features.3.weight"), expected)

    round_trip(window, window.edit_actions.init_action.trigger, changed)


def test_init_every_module_of_a_type(cnn_window, dialogs):
    window = cnn_window

    def fill(dialog):
        dialog.set_types("BatchNorm2d")
        dialog.set_method("ones")
        dialog.param_field.set_text("weight")

    dialogs.answer(fill)

    def changed():
        assert torch.all(window.session.document.tensor("features.1.weight") == 1)
        assert torch.all(window.session.document.tensor("features.4.weight") == 1)
        assert not torch.all(window.session.document.tensor("features.1.bias") == 1)

    round_trip(window, window.edit_actions.init_action.trigger, changed)


def test_freeze_and_unfreeze_with_batchnorm_option(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features"])
    window.edit_actions.bn_eval_action.setChecked(True)
    session = window.session

    def frozen():
        assert not session.document.tensor("features.0.weight").requires_grad
        assert session.document.tensor("classifier.2.weight").requires_grad
        assert not session.model.features[1].training  # BatchNorm kept in eval mode
        index = window.tree_model.index_for_path("features")
        assert window.tree_model.data(index.sibling(index.row(), TRAINABLE)) == "no"
        assert window.undo_action.text() == "Undo Freeze features"

    round_trip(window, window.edit_actions.freeze_action.trigger, frozen)
    session.apply({"op": "freeze", "targets": ["features"], "bn_eval": True})
    round_trip(window, window.edit_actions.unfreeze_action.trigger,
               lambda: session.document.tensor("features.0.weight").requires_grad)


def test_tie_and_untie_tensors(make_window, dialogs):
    window = make_window(Session(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))))
    session = window.session
    window.select_paths(["2.weight"])
    assert window.edit_actions.tie_action.isEnabled()
    assert not window.edit_actions.untie_action.isEnabled()
    dialogs.answer(lambda d: d.choose("0.weight"))

    def tied():
        assert session.document.tensor("2.weight") is session.document.tensor("0.weight")
        info = window.tree_model.info_of(window.tree_model.index_for_path("2.weight"))
        assert info.tied_with == ("0.weight",)

    round_trip(window, window.edit_actions.tie_action.trigger, tied)
    session.apply({"op": "tie", "target": "2.weight", "source": "0.weight"})
    window.select_paths(["2.weight", "0.weight"])
    assert window.edit_actions.untie_action.isEnabled()
    round_trip(window, window.edit_actions.untie_action.trigger,
               lambda: session.document.tensor("2.weight")
               is not session.document.tensor("0.weight"))


def test_tie_modules(make_window, dialogs):
    window = make_window(Session(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))))
    session = window.session
    window.tree.expand_path("2")
    window.select_paths(["2"])
    dialogs.answer(lambda d: d.choose("0"))
    round_trip(window, window.edit_actions.tie_action.trigger,
               lambda: session.model[2] is session.model[0])


def test_untie_tied_language_model(make_window, dialogs):
    window = make_window(Session(seeded(TiedLM)))
    session = window.session
    window.select_paths(["lm_head.weight"])
    round_trip(window, window.edit_actions.untie_action.trigger,
               lambda: session.document.tensor("lm_head.weight")
               is not session.document.tensor("embed.weight"))


def test_replace_module_from_the_form(cnn_window, dialogs):
    window = cnn_window
    session = window.session
    window.select_paths(["classifier.2"])

    def fill(dialog):
        dialog.set_type("Linear")
        dialog.set_argument("out_features", "3")
        dialog.set_field("seed", "1")

    dialogs.answer(fill)

    def changed():
        assert session.model.classifier[2].out_features == 3
        assert session.model.classifier[2].in_features == 6  # inferred
        assert window.selected_paths() == ["classifier.2"]  # the selection survived

    round_trip(window, window.edit_actions.replace_action.trigger, changed)


def test_replace_module_with_a_json_spec(cnn_window, dialogs):
    window = cnn_window
    session = window.session
    window.tree.expand_path("classifier.2")
    window.select_paths(["classifier.2"])
    dialogs.answer(lambda d: d.set_json('{"type": "Sequential", "layers": [{"type": "Linear", '
                                        '"out_features": 4}, {"type": "ReLU"}, '
                                        '{"type": "Linear", "out_features": 2}]}'))

    def changed():
        assert isinstance(session.model.classifier[2], nn.Sequential)
        assert window.tree.isExpanded(window.tree_model.index_for_path("classifier.2"))

    round_trip(window, window.edit_actions.replace_action.trigger, changed)
    assert window.tree.isExpanded(window.tree_model.index_for_path("classifier.2"))


def test_replace_head(cnn_window, dialogs):
    window = cnn_window
    session = window.session

    def fill(dialog):
        dialog.set_field("num_classes", "7")
        dialog.set_field("hidden", "8")
        dialog.set_field("dropout", "0.1")

    dialogs.answer(fill)

    def changed():
        head = session.model.classifier[2]
        assert isinstance(head, nn.Sequential)
        assert head[-1].out_features == 7

    round_trip(window, window.edit_actions.replace_head_action.trigger, changed)


def test_load_weights_shows_the_report(cnn_window, dialogs, tmp_path, qtbot):
    window = cnn_window
    session = window.session
    other = seeded(SmallCNN, seed=5)
    state = {name: tensor for name, tensor in other.state_dict().items()
             if name.startswith("features.0.")}
    state["unknown.weight"] = torch.zeros(2)
    path = tmp_path / "part.safetensors"
    save_file(state, str(path))
    dialogs.answer(lambda d: d.set_field("path", str(path)))
    reports = []

    def show_report(dialog):
        reports.append(dialog.groups())

    dialogs.answer(show_report)

    def changed():
        assert torch.equal(session.document.tensor("features.0.weight"), other.features[0].weight)
        assert reports[0]["Loaded"] == ["features.0.weight", "features.0.bias"]
        assert reports[0]["Unexpected"] == ["unknown.weight"]

    def act():
        window.edit_actions.load_action.trigger()
        # The file is read in the background first; the edit follows on the GUI thread.
        qtbot.waitUntil(lambda: not window.tasks.busy and bool(reports), timeout=10000)

    round_trip(window, act, changed)


def test_refused_edit_is_one_line_and_changes_nothing(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features.0.weight"])
    dialogs.answer(lambda d: d.choose("expr", "x.reshape(5)"))
    steps = window.session.history.position
    window.edit_actions.set_action.trigger()
    assert dialogs.errors == []  # the message stays in the dialog, which stays open
    assert len(dialogs.refused) == 1
    assert dialogs.refused[0].startswith("set")
    assert "\n" not in dialogs.refused[0]
    assert "Traceback" not in dialogs.refused[0]
    assert window.session.history.position == steps
    assert_tree_agrees(window)


def test_dialog_refuses_bad_text(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features.0.bias"])
    accepted = []

    def fill(dialog):
        dialog.choose("value", "twelve")

    dialogs.answer(fill)
    window.edit_actions.set_action.trigger()
    assert accepted == []
    assert window.session.history.position == 0  # nothing applied, nothing written as 0


def test_values_table_edit_is_one_set_edit(cnn_window, dialogs, qtbot):
    window = cnn_window
    session = window.session
    window.select_paths(["classifier.2.weight"])
    table = window.inspector.values.model
    assert table.rowCount() == 5
    index = table.index(1, 2)

    def act():
        assert table.setData(index, "0.75")

    def changed():
        assert session.document.tensor("classifier.2.weight")[1, 2].item() == 0.75
        assert session.recipe()[-1] == {"op": "set", "target": "classifier.2.weight",
                                         "value": 0.75, "index": "1, 2"}
        assert table.data(index) == "0.75"

    round_trip(window, act, changed)
    assert not table.setData(index, "abc")  # refused, nothing written
    assert session.history.position == 0
    assert dialogs.errors == ["'abc' is not a number"]


def test_values_table_slices_nd_tensors(cnn_window):
    window = cnn_window
    window.select_paths(["features.3.weight"])
    values = window.inspector.values
    assert values.slice_edit.isVisibleTo(window)
    assert values.model.rowCount() == 3
    assert values.model.columnCount() == 3
    values.slice_edit.setText("5, 3")
    values.slice_edit.editingFinished.emit()
    weight = window.session.document.tensor("features.3.weight")
    assert values.model.data(values.model.index(2, 1)) == f"{weight[5, 3, 2, 1].item():.6g}"
    assert values.model.index_text(2, 1) == "5, 3, 2, 1"


def test_context_menu_offers_what_applies(cnn_window):
    from PySide6.QtWidgets import QMenu

    window = cnn_window
    window.select_paths(["features.0.weight"])
    menu = QMenu()
    window.edit_actions.fill_context_menu(menu)
    texts = [action.text() for action in menu.actions() if action.text()]
    assert "Set Values…" in texts
    assert "Freeze" in texts
    assert "Replace Module…" not in texts  # a tensor is not a module
    menu.deleteLater()


def checkpoint_window(make_window):
    session = Session(checkpoint={"enc.a.weight": torch.randn(3, 2),
                                  "enc.b.weight": torch.randn(3, 2),
                                  "head.weight": torch.randn(4, 3)})
    return make_window(session)


def checkpoint_round_trip(window, act, changed):
    """Checkpoint mode: names, order, shapes, dtypes and bits restored by undo."""
    session = window.session
    before = {name: (slot, slot.tensor.detach().clone())
              for name, slot in session.checkpoint.entries.items()}
    act()
    changed()
    assert_tree_agrees(window)
    window.undo_action.trigger()
    assert list(session.checkpoint.entries) == list(before)
    for name, (slot, values) in before.items():
        live = session.checkpoint.entries[name]
        assert live is slot
        assert live.tensor.dtype == values.dtype
        assert torch.equal(live.tensor, values)
    assert_tree_agrees(window)


@pytest.mark.parametrize("op", ["rename", "copy", "cast", "resize", "delete"])
def test_checkpoint_tensor_operations(make_window, dialogs, op):
    window = checkpoint_window(make_window)
    session = window.session
    window.tree.expand_path("enc.a")
    window.select_paths(["enc.a.weight"])
    action = window.edit_actions.tensor_op_actions[op]
    assert action.isEnabled()
    fills = {"rename": ("to", "enc.c.weight"), "copy": ("to", "spare.weight"),
             "cast": ("dtype", "float16"), "resize": ("shape", "5, 2")}
    if op == "delete":
        dialogs.questions.append(True)
    else:
        dialogs.answer(lambda d: d.set_field(*fills[op]))
    checks = {
        "rename": lambda: "enc.c.weight" in session.document.tensor_names()
        and "enc.a.weight" not in session.document.tensor_names(),
        "copy": lambda: torch.equal(session.document.tensor("spare.weight"),
                                    session.document.tensor("enc.a.weight")),
        "cast": lambda: session.document.tensor("enc.a.weight").dtype == torch.float16,
        "resize": lambda: tuple(session.document.tensor("enc.a.weight").shape) == (5, 2),
        "delete": lambda: "enc.a.weight" not in session.document.tensor_names(),
    }

    def changed():
        assert dialogs.errors == []
        assert checks[op]()

    checkpoint_round_trip(window, action.trigger, changed)
    if op in ("rename", "copy", "resize", "cast"):
        # The expansion of enc.a survived the rebuild of the rows.
        assert window.tree.isExpanded(window.tree_model.index_for_path("enc.a"))


def test_attach_architecture_switches_mode_and_back(make_window, dialogs, qtbot):
    model = seeded(SmallCNN)
    session = Session(checkpoint={name: tensor.clone() for name, tensor in
                                  model.state_dict().items()})
    window = make_window(session)
    assert window.edit_actions.attach_action.isEnabled()
    spec = f"{__file__.replace('test_actions.py', '')}../models.py:SmallCNN"
    dialogs.answer(lambda d: d.set_field("arch", spec))
    dialogs.answer(lambda d: None)  # trust the model file (it runs when imported)
    dialogs.answer(lambda d: None)  # the report
    window.edit_actions.attach_action.trigger()
    assert dialogs.errors == []
    assert session.mode == "model"
    assert window.tree_model.info_of(window.tree_model.index_for_path("")).type_name \
        == "SmallCNN"
    qtbot.waitUntil(lambda: window.mode_label.text() == "Mode: model", timeout=2000)
    assert window.edit_actions.freeze_action.isEnabled() is False  # nothing selected
    assert_tree_agrees(window)
    window.undo_action.trigger()
    assert session.mode == "checkpoint"
    assert_tree_agrees(window)
    qtbot.waitUntil(lambda: window.mode_label.text() == "Mode: checkpoint", timeout=2000)
