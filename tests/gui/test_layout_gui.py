"""Edit ▸ Tensors ▸ Across Tensors: the forms filled from the selection, applied as one
undoable step, a refusal under the field it names."""

from __future__ import annotations

import torch
from PySide6.QtWidgets import QPushButton
from safetensors.torch import save_file

from engine import Session
from tests.snapshots import bits


def qkv_session():
    generator = torch.Generator().manual_seed(0)
    return Session(checkpoint={
        f"attn.{part}_proj.weight": torch.randn(4, 3, generator=generator)
        for part in "qkv"} | {"norm.weight": torch.ones(3)})


def state_bits(session):
    return {name: bits(tensor) for name, tensor in session.state_dict().items()}


def test_fuse_q_k_v_from_the_selection_and_split_back_with_undo(make_window, dialogs):
    window = make_window(qkv_session())
    session = window.session
    before = state_bits(session)
    values = {name: tensor.clone() for name, tensor in session.state_dict().items()}
    names = [f"attn.{part}_proj.weight" for part in "qkv"]
    window.select_paths(names, names[0])
    actions = window.layout_actions.actions
    across = [action.text() for action in
              window.edit_actions.tensor_menu.actions()[-1].menu().actions()]
    assert across == ["Concatenate…", "Split…", "Permute…", "Transpose…", "Reshape…",
                      "Copy From File…"]
    window.layout_actions.update_enabled()
    assert actions["concat"].isEnabled()
    assert not actions["split"].isEnabled()  # one tensor
    filled = []
    dialogs.answer(lambda dialog: filled.append(
        {name: field.text() for name, field in dialog.fields.items()}))
    actions["concat"].trigger()
    assert filled == [{"sources": ", ".join(names), "to": "attn.qkv_proj.weight", "dim": "0"}]
    fused = session.state_dict()["attn.qkv_proj.weight"]
    expected = torch.cat([values[name] for name in names])
    assert torch.equal(fused, expected)
    assert list(session.document.tensor_names()) == ["attn.qkv_proj.weight", "norm.weight"]

    window.select_paths(["attn.qkv_proj.weight"], "attn.qkv_proj.weight")
    window.layout_actions.update_enabled()
    split = []

    def answer_split(dialog):
        split.append(dialog.fields["sizes"].text())
        dialog.set_field("to", ", ".join(names))
    dialogs.answer(answer_split)
    actions["split"].trigger()
    assert split == ["4, 4, 4"]
    assert sorted(state_bits(session)) == sorted(before)
    assert all(torch.equal(state_bits(session)[name], before[name]) for name in before)
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert list(session.document.tensor_names()) == [*names, "norm.weight"]
    assert all(torch.equal(state_bits(session)[name], before[name]) for name in before)


def test_reshape_refused_under_its_field_and_transpose_applied(make_window, dialogs):
    window = make_window(qkv_session())
    session = window.session
    name = "attn.q_proj.weight"
    window.select_paths([name], name)
    seen = []

    def bad_shape(dialog):
        seen.append(dialog)
        assert dialog.fields["shape"].text() == "4, 3"
        dialog.set_field("shape", "5, 2")
    dialogs.answer(bad_shape)
    window.layout_actions.actions["reshape"].trigger()
    assert dialogs.refused == ["reshape.shape: (5, 2) has 10 elements; 'attn.q_proj.weight' "
                               "(4, 3) has 12"]
    assert seen[0].fields["shape"].error_text() == dialogs.refused[0]
    assert session.history.position == 0
    original = session.state_dict()[name].clone()
    dialogs.answer(lambda dialog: None)
    window.layout_actions.actions["transpose"].trigger()
    assert torch.equal(session.state_dict()[name], original.t())
    window.undo_action.trigger()
    assert torch.equal(session.state_dict()[name], original)


def test_copy_from_file_with_browse(make_window, dialogs, tmp_path):
    save_file({"extra.weight": torch.arange(6.0).reshape(2, 3)},
              str(tmp_path / "other.safetensors"))
    window = make_window(qkv_session())
    session = window.session
    window.select_paths([], None)
    dialogs.paths.append(str(tmp_path / "other.safetensors"))

    def answer(dialog):
        [browse] = [button for button in dialog.findChildren(QPushButton)
                    if button.text() == "Browse…"]
        browse.click()
        dialog.set_field("source", "extra.weight")
    dialogs.answer(answer)
    window.layout_actions.actions["copy_from_file"].trigger()
    assert torch.equal(session.state_dict()["extra.weight"], torch.arange(6.0).reshape(2, 3))
    window.undo_action.trigger()
    assert "extra.weight" not in session.document.tensor_names()
