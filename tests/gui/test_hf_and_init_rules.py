"""GUI: a Hugging Face folder opens in model mode in one step; the Initialize dialog's rule
table gives the tutorials' `model.apply(weight_init)` bit for bit; the exported script
carries the training panel's per-group learning rates."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from PySide6.QtWidgets import QPushButton
from torch import nn

from engine import Session
from tests.engine.io import hf_folders
from tests.engine.test_init_rules import RESNET_RULES, tutorial_weight_init
from tests.gui.helpers import assert_tree_agrees, round_trip
from tests.models import SmallCNN, seeded


def wait_opened(qtbot, window):
    qtbot.waitUntil(lambda: window.session is not None and not window.tasks.busy,
                    timeout=30000)


def test_open_folder_offers_the_config_architecture_at_once(make_window, qtbot, tmp_path,
                                                             dialogs):
    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    window = make_window()
    dialogs.paths.append(str(folder))
    dialogs.questions.append(True)  # "Open as BertModel"
    window.file_actions.choose_and_open_folder()
    wait_opened(qtbot, window)
    session = window.session
    assert session.mode == "model"
    assert type(session.model).__name__ == "BertModel"
    assert session.source["arch"] == "hf"
    ignored = session.source["load_report"]["ignored"]
    assert [item["name"] for item in ignored] == ["embeddings.position_ids"]
    assert "position_ids" in window.statusBar().currentMessage()
    assert dialogs.infos == []  # nothing that did not fit, so no report to read
    assert_tree_agrees(window)
    # The crash journal records the request, so it reopens the same way.
    assert window.request["arch"] == "hf"
    assert window.request["options"] == {"strict": False}


def test_tensors_only_keeps_checkpoint_mode(make_window, qtbot, tmp_path, dialogs):
    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    window = make_window()
    dialogs.questions.append(False)  # "Tensors Only"
    window.file_actions.open_path(str(folder))
    wait_opened(qtbot, window)
    assert window.session.mode == "checkpoint"
    assert "embeddings.position_ids" in window.session.document.tensor_names()


def test_what_does_not_fit_is_shown_after_opening(make_window, qtbot, tmp_path, dialogs):
    folder = hf_folders.head_model_from_base(tmp_path / "head")
    window = make_window()
    dialogs.questions.append(True)
    window.file_actions.open_path(str(folder / "model.safetensors"))  # its weights file
    wait_opened(qtbot, window)
    assert type(window.session.model).__name__ == "BertForSequenceClassification"
    assert len(dialogs.infos) == 1
    assert "2 tensor(s) of the model missing from the file" in dialogs.infos[0]


def test_a_folder_without_config_is_not_asked_about(make_window, qtbot, tmp_path, dialogs):
    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    (folder / "config.json").unlink()
    window = make_window()
    window.file_actions.open_path(str(folder))  # no question queued: one would fail
    wait_opened(qtbot, window)
    assert window.session.mode == "checkpoint"


def test_attach_dialog_offers_hf_for_a_hf_folder(make_window, tmp_path):
    from gui.dialogs.edit_dialogs import AttachDialog

    folder = hf_folders.sentence_transformers_bert(tmp_path / "st")
    dialog = AttachDialog(Session.open(folder))
    assert dialog.fields["arch"].text() == "hf"
    assert dialog.spec()["arch"] == "hf"
    dialog.deleteLater()


# ----------------------------------------------------------------------------- init rules
@pytest.fixture
def cnn_window(make_window):
    return make_window(Session(seeded(SmallCNN)))


def test_rule_table_gives_the_tutorial_code_bit_for_bit(cnn_window, dialogs):
    window = cnn_window
    expected = copy.deepcopy(window.session.model)
    torch.manual_seed(11)
    expected.apply(tutorial_weight_init)

    def fill(dialog):
        dialog.use_rules()
        dialog.rule_table.set_rules([])
        for rule in RESNET_RULES:  # typed row by row, as a user would
            dialog.rule_table.add_rule()
            row = dialog.rule_table.table.rowCount() - 1
            dialog.rule_table.set_cell(row, "Types", ", ".join(rule["types"]))
            dialog.rule_table.set_cell(row, "Param", rule["param"])
            dialog.rule_table.set_cell(row, "Method", rule["method"])
            dialog.rule_table.set_cell(row, "Arguments", ", ".join(
                f"{key}={value}" for key, value in rule.get("args", {}).items()))
        dialog.set_field("seed", "11")

    dialogs.answer(fill)

    def changed():
        ours, theirs = window.session.model.state_dict(), expected.state_dict()
        for name, tensor in theirs.items():
            assert torch.equal(ours[name], tensor), name
        assert window.session.recipe()[-1] == {"op": "init", "rules": RESNET_RULES,
                                               "seed": 11}

    round_trip(window, window.edit_actions.init_action.trigger, changed)


def test_rule_table_preset_on_a_selected_module(cnn_window, dialogs):
    window = cnn_window
    window.select_paths(["features"])
    expected = copy.deepcopy(window.session.model)
    torch.manual_seed(2)
    expected.features.apply(tutorial_weight_init)

    def fill(dialog):
        dialog.use_rules()
        dialog.rule_table.set_rules([])
        (preset,) = [button for button in dialog.rule_table.findChildren(QPushButton)
                     if button.text() == "Tutorial CNN Rules"]
        preset.click()
        dialog.set_field("seed", "2")

    dialogs.answer(fill)

    def changed():
        for name, tensor in expected.state_dict().items():
            assert torch.equal(window.session.model.state_dict()[name], tensor), name
        assert window.session.recipe()[-1]["target"] == "features"

    round_trip(window, window.edit_actions.init_action.trigger, changed)


def test_a_bad_rule_keeps_the_dialog_open_with_the_message(cnn_window, dialogs):
    window = cnn_window

    def fill(dialog):
        dialog.use_rules([{"types": ["Linear"], "param": "bias", "method": "kaiming_normal"}])

    dialogs.answer(fill)
    window.edit_actions.init_action.trigger()
    assert dialogs.refused == ["init.rules[0].method: 'kaiming_normal' needs a tensor with 2 "
                               "or more dims; 'classifier.2.bias' has 1 (select weights with "
                               "param: weight)"]
    assert not window.session.can_undo

    def bad_args(dialog):
        dialog.use_rules([{"types": ["Linear"], "param": "bias", "method": "normal"}])
        dialog.rule_table.set_cell(0, "Arguments", "std")

    dialogs.answer(bad_args)
    window.edit_actions.init_action.trigger()
    assert dialogs.refused[-1].startswith("Rule 1: Arguments: expected name=value pairs")


# ----------------------------------------------------------------------------- script
def test_export_script_carries_the_panels_parameter_groups(cnn_window, dialogs, tmp_path):
    window = cnn_window
    window.session.apply({"op": "freeze", "targets": ["features.0"]})
    window.training.multipliers_edit.setText("classifier=10")
    window.training.lr_box.setValue(0.01)
    path = tmp_path / "edits.py"
    dialogs.paths.append(str(path))
    window.file_actions.export_script()
    text = path.read_text()
    assert "def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:" in text
    namespace: dict = {}
    exec(compile(text, str(path), "exec"), namespace)
    model = seeded(SmallCNN)
    namespace["apply_edits"](model)
    groups = namespace["make_optimizer"](model).param_groups
    assert [group["lr"] for group in groups] == pytest.approx([0.01, 0.1])
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in groups[1]["params"]] == ["classifier.2.weight",
                                                          "classifier.2.bias"]
    assert isinstance(model.features[0], nn.Conv2d)
    assert json.dumps(window.session.recipe())  # nothing unexportable was added
