"""Edit ▸ Merge Models… and the Adapters menu: the dialogs, the background merge with its
report (table and per-layer plot), undo, Cancel, and refusals beside the field."""

from __future__ import annotations

import math

import torch
from safetensors.torch import load_file, save_file

from engine import Session
from tests.models import MLP
from tests.snapshots import bits


def variant_files(folder, count=3):
    """Three fine-tunes of one MLP (base first), as safetensors."""
    torch.manual_seed(0)
    base = MLP().state_dict()
    paths = []
    for index in range(count):
        generator = torch.Generator().manual_seed(index)
        state = {name: tensor + 0.1 * index * torch.randn(tensor.shape, generator=generator)
                 for name, tensor in base.items()}
        path = folder / f"v{index}.safetensors"
        save_file(state, str(path))
        paths.append(str(path))
    return paths


def state_bits(session):
    return {name: bits(tensor) for name, tensor in session.state_dict().items()}


def wait_done(qtbot, window, timeout=120000):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=timeout)


def fill_merge(models, method="linear", **fields):
    """Answer the Merge dialog: `models` are (path, weight, density) after "self"."""
    def answer(dialog):
        dialog.set_field("method", method)
        for path, weight, density in models:
            dialog.models_field.add_model(path, weight, density)
        for name, text in fields.items():
            dialog.set_field(name, text)
    return answer


def test_merge_from_the_dialog_shows_the_report_and_undoes(make_window, qtbot, dialogs,
                                                           tmp_path):
    paths = variant_files(tmp_path)
    window = make_window(Session.open(paths[0]))
    session = window.session
    assert window.merge_actions.merge_action in window.menuBar().actions()[1].menu().actions()
    before = state_bits(session)
    reports = []

    def read_report(dialog):
        reports.append({"rows": [[dialog.cell(row, column)
                                  for column in range(dialog.table.columnCount())]
                                 for row in range(dialog.table.rowCount())],
                        "headers": [dialog.table.horizontalHeaderItem(column).text()
                                    for column in range(dialog.table.columnCount())],
                        "figures": [dialog.figure_box.itemText(i)
                                    for i in range(dialog.figure_box.count())],
                        "bars": (dialog.overview.names, dialog.overview.values)})

    dialogs.answer(fill_merge([(paths[1], "1", "1"), (paths[2], "2", "1")]))
    dialogs.answer(read_report)
    window.merge_actions.merge_action.trigger()
    assert dialogs.shown == ["MergeDialog"]
    assert window.tasks.busy  # computed in the background
    wait_done(qtbot, window)
    assert dialogs.errors == []
    assert dialogs.refused == []
    assert dialogs.shown == ["MergeDialog", "ReportDialog"]
    states = [load_file(path) for path in paths]
    for name, tensor in session.state_dict().items():
        expected = (states[0][name] + states[1][name] + 2 * states[2][name]) / 4
        torch.testing.assert_close(tensor, expected, atol=1e-6, rtol=0)
    [report] = reports
    assert report["headers"] == ["Tensor", "Shape", "vs self (before)", "vs v1.safetensors",
                                 "vs v2.safetensors"]
    merged = window.merge_actions.report
    shapes = {"fc1.weight": "8x6", "fc1.bias": "8", "fc2.weight": "4x8", "fc2.bias": "4"}
    order = [tensor["name"] for tensor in merged["tensors"]]
    assert sorted(order) == sorted(shapes)
    assert [row[:2] for row in report["rows"]] == [[name, shapes[name]] for name in order]
    first = merged["tensors"][0]["relative_change"]
    assert report["rows"][0][2:] == [f"{first[label]:.4g}" for label in first]
    assert report["figures"][0] == "relative change against self (before)"
    names, values = report["bars"]
    assert names == order
    assert all(math.isclose(value, tensor["relative_change"]["self"])
               for value, tensor in zip(values, merged["tensors"], strict=True))
    assert window.undo_action.text() == "Undo Merge (linear) self, v1.safetensors, v2.safetensors"
    window.undo_action.trigger()
    assert state_bits(session).keys() == before.keys()
    assert all(torch.equal(state_bits(session)[name], before[name]) for name in before)
    window.redo_action.trigger()
    torch.testing.assert_close(session.state_dict()["fc1.weight"],
                               (states[0]["fc1.weight"] + states[1]["fc1.weight"]
                                + 2 * states[2]["fc1.weight"]) / 4, atol=1e-6, rtol=0)
    assert session.busy_reason is None


def test_cancel_leaves_the_document_unchanged(make_window, qtbot, dialogs, tmp_path,
                                             monkeypatch):
    import threading

    from engine.merge.compute import Merger

    paths = variant_files(tmp_path)
    window = make_window(Session.open(paths[0]))
    session = window.session
    before = state_bits(session)
    steps = session.history.position
    # The first tensor waits until Cancel was pressed: a tiny merge would end before.
    pressed = threading.Event()
    merge = Merger.merge

    def waiting(self, name, report=False):
        assert pressed.wait(60)
        return merge(self, name, report)

    monkeypatch.setattr(Merger, "merge", waiting)
    dialogs.answer(fill_merge([(paths[1], "1", "1")]))
    window.merge_actions.merge_action.trigger()
    assert window.tasks.busy
    window.tasks.cancel()
    pressed.set()
    wait_done(qtbot, window)
    assert window.statusBar().currentMessage() == "Merge cancelled; the document is unchanged"
    assert dialogs.shown == ["MergeDialog"]  # no report
    assert session.history.position == steps
    assert not session.is_modified
    assert all(torch.equal(state_bits(session)[name], before[name]) for name in before)
    assert session.busy_reason is None


def test_a_bad_input_is_one_line_beside_its_field(make_window, qtbot, dialogs, tmp_path):
    paths = variant_files(tmp_path, 2)
    window = make_window(Session.open(paths[0]))
    session = window.session
    seen = []

    def keep(fill):
        def answer(dialog):
            seen.append(dialog)
            fill(dialog)
        return answer

    dialogs.answer(keep(fill_merge([(paths[1], "abc", "1")])))
    window.merge_actions.merge_action.trigger()
    dialogs.answer(keep(fill_merge([(paths[1], "1", "1")], method="slerp", base="self")))
    window.merge_actions.merge_action.trigger()
    dialogs.answer(keep(fill_merge([(str(tmp_path / "missing.safetensors"), "1", "1")])))
    window.merge_actions.merge_action.trigger()
    assert dialogs.refused == [
        "Models: row 2 weight: 'abc' is not a number",
        "merge.parameters.t: required by slerp (0 gives the base, 1 the other model)",
        f"Models: row 2: no file or folder {tmp_path / 'missing.safetensors'}"]
    assert seen[0].models_field.error_text() == dialogs.refused[0]
    assert seen[1].t_field.error_text() == dialogs.refused[1]
    assert seen[2].models_field.error_text() == dialogs.refused[2]
    assert not window.tasks.busy
    assert session.history.position == 0
    assert not session.is_modified


def test_an_input_that_cannot_be_read_brings_the_dialog_back(make_window, qtbot, dialogs,
                                                            tmp_path):
    paths = variant_files(tmp_path, 1)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    window = make_window(Session.open(paths[0]))
    problems = []

    def give_up(dialog):
        problems.append((dialog.problem_text(), dialog.models_field.text()))
        return False

    dialogs.answer(fill_merge([(str(broken), "1", "1")]))
    dialogs.answer(give_up)
    window.merge_actions.merge_action.trigger()
    qtbot.waitUntil(lambda: bool(problems), timeout=120000)
    wait_done(qtbot, window)
    [(problem, models)] = problems
    assert problem.startswith(f"merge.models: {broken}")
    assert "\n" not in problem
    assert models == f"self\n{broken}"  # what the user typed is still there
    assert window.session.history.position == 0


def test_extract_lora_then_merge_it_back_from_the_adapters_menu(make_window, qtbot, dialogs,
                                                                tmp_path):
    torch.manual_seed(0)
    base = MLP().state_dict()
    tuned = dict(base)
    tuned["fc1.weight"] = base["fc1.weight"] + torch.randn(8, 2) @ torch.randn(2, 6)
    tuned["fc2.weight"] = base["fc2.weight"] + torch.randn(4, 2) @ torch.randn(2, 8)
    save_file(base, str(tmp_path / "base.safetensors"))
    save_file(tuned, str(tmp_path / "tuned.safetensors"))
    window = make_window(Session.open(str(tmp_path / "base.safetensors")))
    menu = window.adapters_menu
    assert [action.text() for action in menu.actions()] == ["Merge LoRA…", "Extract LoRA…"]
    extracted = []

    def fill_extract(dialog):
        dialog.set_field("base", str(tmp_path / "base.safetensors"))
        dialog.set_field("tuned", str(tmp_path / "tuned.safetensors"))
        dialog.set_field("rank", "2")
        dialog.set_field("output", str(tmp_path / "adapter"))

    dialogs.answer(fill_extract)
    dialogs.answer(lambda dialog: extracted.append(
        [[dialog.cell(row, column) for column in range(3)]
         for row in range(dialog.table.rowCount())]))
    window.merge_actions.extract_lora_action.trigger()
    wait_done(qtbot, window)
    assert dialogs.errors == []
    assert extracted == [[["fc1.weight", "linear", "8x6"], ["fc2.weight", "linear", "4x8"]]]
    errors = [weight["relative_error"] for weight in window.merge_actions.report["weights"]]
    assert max(errors) < 1e-4
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert window.session.history.position == 0  # extracting changes no document

    session = window.session
    before = state_bits(session)
    dialogs.answer(lambda dialog: dialog.set_field("adapter", str(tmp_path / "adapter")))
    dialogs.answer(lambda dialog: None)  # the report
    menu.actions()[0].trigger()
    assert dialogs.shown[-2:] == ["MergeLoraDialog", "ReportDialog"]
    for name in ("fc1.weight", "fc2.weight"):
        got = session.state_dict()[name]
        assert torch.linalg.vector_norm(got - tuned[name]) / torch.linalg.vector_norm(
            tuned[name]) < 1e-4
    changes = window.merge_actions.report["tensors"]
    assert [change["name"] for change in changes] == ["fc1.weight", "fc2.weight"]
    assert all(change["relative_change"] > 0 for change in changes)
    window.undo_action.trigger()
    assert all(torch.equal(state_bits(session)[name], before[name]) for name in before)


def test_merge_lora_refusals_are_one_line_beside_the_adapter(make_window, qtbot, dialogs,
                                                             tmp_path):
    import json

    save_file(MLP().state_dict(), str(tmp_path / "base.safetensors"))
    window = make_window(Session.open(str(tmp_path / "base.safetensors")))
    (tmp_path / "empty").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 2, "lora_alpha": 2, "target_modules": ["proj"]}))
    save_file({"base_model.model.proj.lora_A.weight": torch.ones(2, 3),
               "base_model.model.proj.lora_B.weight": torch.ones(5, 2)},
              str(other / "adapter_model.safetensors"))
    seen = []
    for folder in (tmp_path / "empty", other):
        dialogs.answer(lambda dialog, folder=folder: (seen.append(dialog),
                                                      dialog.set_field("adapter", str(folder))))
        window.merge_actions.merge_lora_action.trigger()
    assert dialogs.refused == [
        f"Adapter folder: {tmp_path / 'empty'} has no adapter_config.json (not a PEFT "
        "adapter folder)",
        "merge_lora.adapter: the adapter adapts 'proj', but the document has no tensor "
        "'proj.weight' (an adapter for another model?)"]
    assert [dialog.adapter_field.error_text() for dialog in seen] == dialogs.refused
    assert window.session.history.position == 0


def test_a_merge_that_cannot_be_undone_is_asked_first(make_window, qtbot, dialogs, tmp_path):
    paths = variant_files(tmp_path, 2)
    model = MLP()
    model.load_state_dict(load_file(paths[0]))
    # Undo of a model-mode merge keeps the old values (4 tensors, 544 bytes): over budget.
    window = make_window(Session(model, history_budget=100))
    session = window.session
    before = state_bits(session)
    dialogs.answer(fill_merge([(paths[1], "1", "1")]))
    dialogs.questions.append(False)
    window.merge_actions.merge_action.trigger()
    wait_done(qtbot, window)
    assert window.statusBar().currentMessage() == "Merge not applied"
    assert session.history.position == 0
    assert all(torch.equal(state_bits(session)[name], before[name]) for name in before)
    dialogs.answer(fill_merge([(paths[1], "1", "1")]))
    dialogs.questions.append(True)
    dialogs.answer(lambda dialog: None)  # the report
    window.merge_actions.merge_action.trigger()
    wait_done(qtbot, window)
    assert dialogs.shown[-1] == "ReportDialog"
    second = load_file(paths[1])
    torch.testing.assert_close(model.fc1.weight.detach(),
                               (load_file(paths[0])["fc1.weight"] + second["fc1.weight"]) / 2,
                               atol=1e-6, rtol=0)
    assert not session.can_undo  # applied and recorded, its undo data dropped
