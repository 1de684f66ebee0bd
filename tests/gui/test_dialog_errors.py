"""A refused edit keeps its dialog open, with what the user typed and the message beside the
field at fault; fixing the field and pressing OK again applies the edit."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtWidgets import QDialog, QFormLayout

from engine import Session
from tests.gui.helpers import assert_tree_agrees
from tests.models import SmallCNN, seeded


@pytest.fixture
def cnn_window(make_window):
    return make_window(Session(seeded(SmallCNN)))


def press_ok(dialog) -> bool:
    """Press OK as a user would; True when the dialog closed accepted."""
    dialog.setResult(QDialog.DialogCode.Rejected)
    dialog.accept()
    return dialog.result() == QDialog.DialogCode.Accepted


def assert_beside(dialog, field) -> None:
    """The field's message is in the row right below the field, in the same form."""
    label = field.error_label
    assert label is not None
    assert not label.isHidden()
    for form in dialog.findChildren(QFormLayout):
        row, _ = form.getWidgetPosition(label)
        if row >= 0:
            field_row, _ = form.getWidgetPosition(field.widget)
            if field_row < 0:  # the input sits in a row layout with a Browse button
                field_row = next(r for r in range(form.rowCount())
                                 if _row_holds(form, r, field.widget))
            assert row == field_row + 1
            return
    raise AssertionError("the message is in no form")


def _row_holds(form, row, widget) -> bool:
    item = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
    layout = item.layout() if item is not None else None
    return layout is not None and any(layout.itemAt(i).widget() is widget
                                      for i in range(layout.count()))


def test_set_values_with_a_bad_expression_stays_open_with_the_input(cnn_window, dialogs):
    window = cnn_window
    session = window.session
    window.select_paths(["features.0.weight"])
    before = session.document.tensor("features.0.weight").clone()
    seen = {}

    def fill(dialog):
        dialog.choose("expr", "foo(x)")
        assert not press_ok(dialog)  # refused: still open
        seen["message"] = dialog.expr_field.error_text()
        seen["kept"] = dialog.expr_field.text()
        assert_beside(dialog, dialog.expr_field)
        assert dialog.problem.isHidden()  # beside the field, not under the form
        assert session.history.position == 0
        assert torch.equal(session.document.tensor("features.0.weight"), before)
        dialog.choose("expr", "x * 0")  # fixed; the driver presses OK again

    dialogs.answer(fill)
    window.edit_actions.set_action.trigger()
    assert seen["message"] == "set.expr: the function 'foo' is not allowed in an expression"
    assert seen["kept"] == "foo(x)"
    assert session.history.position == 1
    assert torch.all(session.document.tensor("features.0.weight") == 0)
    assert dialogs.errors == []
    window.undo_action.trigger()
    assert torch.equal(session.document.tensor("features.0.weight"), before)


def test_a_bad_number_is_shown_under_its_field_and_nothing_is_written(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features.0.bias"])
    seen = {}

    def fill(dialog):
        dialog.choose("value", "twelve")
        dialog.set_field("seed", "-3")
        assert not press_ok(dialog)
        seen["value"] = dialog.value_field.error_text()
        assert_beside(dialog, dialog.value_field)
        dialog.choose("value", "12")
        assert not press_ok(dialog)  # now the seed is the problem, and only the seed
        seen["seed"] = dialog.seed_field.error_text()
        seen["value_after"] = dialog.value_field.error_text()
        return False  # the user gives up

    dialogs.answer(fill)
    window.edit_actions.set_action.trigger()
    assert seen["value"] == "Value: 'twelve' is not a number or a list of numbers"
    assert seen["seed"] == "Seed: must be at least 0"
    assert seen["value_after"] == ""
    assert window.session.history.position == 0


def test_replace_module_errors_beside_the_argument_or_under_the_form(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["classifier.2"])
    seen = {}

    def fill(dialog):
        dialog.set_type("Conv2d")
        dialog.set_argument("out_channels", "4")
        assert not press_ok(dialog)
        field = next(f for f in dialog.arg_fields if f.name == "kernel_size")
        seen["missing"] = field.error_text()
        assert_beside(dialog, field)
        dialog.set_type("Linear")
        dialog.set_argument("out_features", "-3")
        assert not press_ok(dialog)  # the engine refuses; its message names no field
        seen["engine"] = dialog.problem.text()
        assert not dialog.problem.isHidden()
        dialog.set_argument("out_features", "3")

    dialogs.answer(fill)
    window.edit_actions.replace_action.trigger()
    assert seen["missing"] == "kernel_size: required"
    assert seen["engine"].startswith("replace.module: Linear(out_features=-3")
    assert window.session.history.position == 1
    assert window.session.model.classifier[2].out_features == 3
    assert_tree_agrees(window)


def test_init_argument_error_is_beside_the_argument(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features.0.weight"])
    seen = {}

    def fill(dialog):
        dialog.set_method("normal")
        dialog.set_argument("std", '"wide"')
        assert not press_ok(dialog)
        field = next(f for f in dialog.arg_fields if f.name == "std")
        seen["message"] = field.error_text()
        seen["kept"] = field.text()
        dialog.set_argument("std", "0.5")

    dialogs.answer(fill)
    window.edit_actions.init_action.trigger()
    assert "'std'" in seen["message"]
    assert seen["kept"] == '"wide"'
    assert window.session.history.position == 1


def test_a_rename_refused_is_shown_beside_the_new_name(make_window, dialogs):
    session = Session(checkpoint={"a.weight": torch.ones(2), "b.weight": torch.zeros(2)})
    window = make_window(session)
    window.select_paths(["a.weight"])
    seen = {}

    def fill(dialog):
        dialog.set_field("to", "b.weight")  # taken
        assert not press_ok(dialog)
        seen["beside"] = dialog.fields["to"].error_text()
        seen["problem"] = dialog.problem_text()
        return False

    dialogs.answer(fill)
    window.edit_actions.tensor_op_actions["rename"].trigger()
    assert seen["problem"].startswith("rename")
    assert "b.weight" in seen["problem"]
    assert seen["beside"] == seen["problem"]  # rename.to names the field
    assert list(session.checkpoint.entries) == ["a.weight", "b.weight"]


def test_several_renames_are_one_step_and_a_cancel_undoes_the_first(make_window, dialogs):
    session = Session(checkpoint={"a.weight": torch.ones(2), "b.weight": torch.zeros(2),
                                  "c.weight": torch.full((2,), 2.0)})
    window = make_window(session)
    window.select_paths(["a.weight", "b.weight"])
    refused = []

    def second(dialog):
        dialog.set_field("to", "c.weight")
        assert not press_ok(dialog)  # taken: stays open
        refused.append(dialog.problem_text())
        return False  # cancel the series

    dialogs.answer(lambda d: d.set_field("to", "x.weight"))
    dialogs.answer(second)
    window.edit_actions.tensor_op_actions["rename"].trigger()
    assert refused
    assert sorted(session.checkpoint.entries) == ["a.weight", "b.weight", "c.weight"]
    assert session.history.position == 0
    window.select_paths(["a.weight", "b.weight"])
    dialogs.answer(lambda d: d.set_field("to", "x.weight"))
    dialogs.answer(lambda d: d.set_field("to", "y.weight"))
    window.edit_actions.tensor_op_actions["rename"].trigger()
    assert sorted(session.checkpoint.entries) == ["c.weight", "x.weight", "y.weight"]
    assert session.history.position == 1
    window.undo_action.trigger()
    assert sorted(session.checkpoint.entries) == ["a.weight", "b.weight", "c.weight"]


def test_load_weights_refused_comes_back_with_the_input(cnn_window, dialogs, qtbot, tmp_path):
    window = cnn_window
    missing = str(tmp_path / "missing.safetensors")
    seen = {}

    def first(dialog):
        dialog.set_field("path", missing)
        dialog.set_field("exclude", "fc.*")

    def again(dialog):
        seen["path"] = dialog.path_field.text()
        seen["exclude"] = dialog.fields["exclude"].text()
        seen["message"] = dialog.path_field.error_text()
        return False

    dialogs.answer(first)
    dialogs.answer(again)
    window.edit_actions.load_action.trigger()
    qtbot.waitUntil(lambda: "message" in seen, timeout=10000)
    assert seen["path"] == missing
    assert seen["exclude"] == "fc.*"
    assert seen["message"].startswith("load.path:")
    assert "no such file" in seen["message"]
    assert window.session.history.position == 0


def test_field_for_finds_the_field_a_message_is_about(cnn_window):
    from gui.dialogs.replace_dialog import ReplaceDialog

    dialog = ReplaceDialog(cnn_window.session, "features.0", cnn_window)
    by_name = {field.name: field for field in dialog.all_fields()}
    assert dialog.field_for("replace.module.stride: must be positive") is by_name["stride"]
    assert dialog.field_for("Seed: must be at least 0") is by_name["seed"]
    assert dialog.field_for("replace: argument 'padding' is bad") is by_name["padding"]
    assert dialog.field_for("replace: the module is gone") is None
    dialog.deleteLater()


@pytest.mark.parametrize("text", ["1" * 5000, "[" * 100_000 + "]" * 100_000])
def test_hostile_json_typed_or_pasted_is_one_line_beside_the_form(cnn_window, dialogs, text):
    from gui.dialogs.fields import parse_literal

    # An argument field takes it as text (the engine then names the argument).
    assert parse_literal(text) == text
    window = cnn_window
    window.select_paths(["classifier.2"])
    seen = {}

    def fill(dialog):
        dialog.set_json(text)
        assert not press_ok(dialog)
        seen["problem"] = dialog.problem.text()

    dialogs.answer(fill)
    window.edit_actions.replace_action.trigger()
    assert seen["problem"].startswith("JSON spec: not valid JSON (")
    assert "\n" not in seen["problem"]
    assert window.session.history.position == 0
