"""Deployment export (pt2, ONNX, TorchScript): verified artifacts, one-line failures, an
unchanged document, atomic writes.

Every export here is checked twice: by the export's own verification (whose reported
differences are asserted within tolerance) and by loading the written file in the test
with the loader a deployment uses and comparing with the model in eval mode.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from engine import Session
from engine.errors import EditError, ExportError
from engine.export import export_model
from engine.export import options as export_options
from engine.export.run import EXPORTERS
from engine.export.verify import compare, tensor_difference
from engine.io.atomic import TEMP_MARK
from engine.opening import open_demo, open_model
from engine.progress import Cancelled, Progress
from tests.models import MLP, CumMax, Gated, SmallCNN, TiedLM, seeded
from tests.snapshots import assert_same, snapshot

SUFFIX = {"pt2": ".pt2", "onnx": ".onnx", "torchscript": ".pt"}
needs_onnx = pytest.mark.skipif(bool(export_options.missing_onnx_packages()),
                                reason="the deploy extra (onnx, onnxscript, onnxruntime)")


def load_and_run(path: Path, fmt: str, inputs: torch.Tensor) -> torch.Tensor:
    """The written file's main output, loaded the way a deployment loads it."""
    with torch.no_grad():
        return _load_and_run(path, fmt, inputs)


def _load_and_run(path: Path, fmt: str, inputs: torch.Tensor) -> torch.Tensor:
    if fmt == "pt2":
        output = torch.export.load(path).module()(inputs)
    elif fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return torch.from_numpy(np.asarray(session.run(None, {name: inputs.numpy()})[0]))
    else:
        output = jit_load(path)(inputs)
    return output[0] if isinstance(output, tuple | list) else output


def jit_load(path: Path) -> torch.jit.ScriptModule:
    """`torch.jit.load`, without its deprecation warning (warnings fail tests)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*deprecated")
        return torch.jit.load(str(path))


def eval_output(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The model's main output in eval mode, computed on a copy (the model is untouched)."""
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        output = twin(inputs)
    return output[0] if isinstance(output, tuple | list) else getattr(output, "logits", output)


def assert_matches_eval_model(path: Path, fmt: str, model: nn.Module,
                              inputs: torch.Tensor) -> None:
    expected = eval_output(model, inputs)
    actual = load_and_run(path, fmt, inputs)
    _, relative = tensor_difference(expected, actual)
    assert relative <= 1e-4, f"{fmt}: {relative} from the eval-mode model"


def leftovers(folder: Path) -> list[str]:
    return [child.name for child in folder.iterdir() if TEMP_MARK in child.name]


def export_everywhere(session: Session, tmp_path: Path, fmt: str, **options) -> tuple:
    path = tmp_path / f"model{SUFFIX[fmt]}"
    before = snapshot(session.model)
    history = list(session.history.labels)
    modified = session.is_modified
    report = export_model(session, path, fmt, **options)
    assert_same(before, snapshot(session.model))
    assert list(session.history.labels) == history
    assert session.is_modified == modified
    assert path.is_file()
    assert leftovers(tmp_path) == []
    return path, report


def check_report(report, batches: tuple[int, ...]) -> None:
    assert [difference.batch for difference in report.differences] == list(batches)
    for difference in report.differences:
        assert 0.0 <= difference.max_rel <= report.tolerance
        assert difference.max_abs >= 0.0
    assert report.tolerance == 1e-4
    assert "exported in eval mode" in report.format_text()


# ---------------------------------------------------------------------------- the demo
@pytest.mark.parametrize(("fmt", "dynamic"), [
    ("pt2", False),
    pytest.param("onnx", True, marks=needs_onnx),
    ("torchscript", True),
])
def test_demo_model_exports_and_verifies(tmp_path, fmt, dynamic):
    session = open_demo()
    path, report = export_everywhere(session, tmp_path, fmt, dynamic_batch=dynamic)
    check_report(report, (1, 3) if dynamic else (1,))
    assert report.input == ("float32 [batch, 1, 8, 8]" if dynamic else "float32 [1, 1, 8, 8]")
    for batch in (1, 3) if dynamic else (1,):
        inputs = torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(batch))
        assert_matches_eval_model(path, fmt, session.model, inputs)
    if not dynamic:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any failure: the shape is fixed
            load_and_run(path, fmt, torch.rand(2, 1, 8, 8))


# ---------------------------------------------------------------------------- GPT-2
@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    from tests.engine.io import hf_folders

    transformers = hf_folders.transformers
    # 1,000 x 32 tied embedding: big enough that ONNX's optimizer keeps it as one
    # initializer instead of folding a transposed copy (it folds only small constants)
    config = hf_folders.gpt2_config(n_embd=32, vocab_size=1000, n_positions=32)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("gpt2") / "tiny-gpt2"
    return hf_folders.saved(folder, transformers.GPT2LMHeadModel(config))


@pytest.mark.parametrize("fmt", ["pt2", pytest.param("onnx", marks=needs_onnx), "torchscript"])
def test_tiny_gpt2_from_a_folder_exports_with_the_tie_stored_once(tmp_path, gpt2_folder, fmt):
    from tests.engine.io.hf_folders import quiet

    with quiet():
        session = Session.open(gpt2_folder, arch="hf")
    assert session.document.tie_groups() == [["transformer.wte.weight", "lm_head.weight"]]
    path, report = export_everywhere(session, tmp_path, fmt, dynamic_batch=True)
    check_report(report, (1, 3))
    assert report.input == "token ids < 1000, int64 [batch, 16]"
    assert [(tie.names, tie.copies) for tie in report.tied] == [
        (["transformer.wte.weight", "lm_head.weight"], 1)]
    assert any("use_cache=False" in note for note in report.notes)
    tokens = torch.randint(0, 1000, (2, 16), generator=torch.Generator().manual_seed(5))
    assert_matches_eval_model(path, fmt, session.model, tokens)
    if fmt == "torchscript":
        assert report.method == "torch.jit.trace"  # transformers' code does not script
        loaded = jit_load(path).state_dict()
        assert loaded["lm_head.weight"].data_ptr() == loaded["transformer.wte.weight"].data_ptr()


# ---------------------------------------------------------------------------- resnet18
def edited_resnet18() -> Session:
    session = open_model("torchvision:resnet18")
    session.apply({"op": "freeze", "targets": ["*"], "except": ["fc"], "bn_eval": True})
    session.apply({"op": "replace_head", "num_classes": 10, "seed": 0})
    return session


@pytest.mark.parametrize(("fmt", "dynamic"), [
    ("pt2", False),
    pytest.param("pt2", True, marks=pytest.mark.slow),
    pytest.param("onnx", True, marks=[needs_onnx, pytest.mark.slow]),
    pytest.param("torchscript", True, marks=pytest.mark.slow),
])
def test_resnet18_after_replace_head_and_freeze(tmp_path, fmt, dynamic):
    session = edited_resnet18()
    assert session.model.training  # a built torchvision model starts in train mode
    in_train_mode = sum(module.training for module in session.model.modules())
    assert 0 < in_train_mode < len(list(session.model.modules()))  # bn_eval: BN in eval
    path, report = export_everywhere(session, tmp_path, fmt, dynamic_batch=dynamic)
    batches = (1, 3) if dynamic else (1,)
    check_report(report, batches)
    assert report.modules_in_train_mode == in_train_mode
    assert "were in train mode; their modes were put back" in report.mode_text
    assert session.model.training
    for batch in batches:
        inputs = torch.randn(batch, 3, 64, 64, generator=torch.Generator().manual_seed(9))
        assert_matches_eval_model(path, fmt, session.model, inputs)
    assert load_and_run(path, fmt, torch.randn(batches[-1], 3, 64, 64)).shape[-1] == 10


# ---------------------------------------------------------------------------- eval mode
def test_a_model_left_in_train_mode_is_exported_in_eval_mode(tmp_path):
    session = Session(seeded(SmallCNN))
    model = session.model
    model.train()
    with torch.no_grad():  # give BatchNorm statistics that differ from a batch's own
        model.features[1].running_mean.fill_(0.5)
        model.features[1].running_var.fill_(3.0)
    path, report = export_everywhere(session, tmp_path, "pt2", input_shape=[3, 8, 8],
                                     batch_size=4)
    assert model.training
    assert model.features[1].training
    inputs = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    exported = load_and_run(path, "pt2", inputs)
    torch.testing.assert_close(exported, eval_output(model, inputs))
    twin = copy.deepcopy(model).train()
    with torch.no_grad():
        train_output = twin(inputs)
    assert not torch.allclose(exported, train_output, atol=1e-3)
    assert report.modules_in_train_mode == len(list(model.modules()))
    assert report.to_dict()["mode"] == "eval"


@given(modes=st.lists(st.booleans(), min_size=5, max_size=5),
       frozen=st.lists(st.booleans(), min_size=4, max_size=4),
       fail_at=st.sampled_from(["none", "export", "save", "load", "run"]))
@settings(max_examples=12)
def test_modes_values_and_objects_come_back_whatever_happens(tmp_path_factory, modes,
                                                             frozen, fail_at):
    folder = tmp_path_factory.mktemp("modes")
    model = seeded(MLP)
    model.fc1.weight.requires_grad_(frozen[0])
    model.fc1.bias.requires_grad_(frozen[1])
    model.fc2.weight.requires_grad_(frozen[2])
    model.fc2.bias.requires_grad_(frozen[3])
    for module, training in zip(model.modules(), modes, strict=False):
        module.training = training
    session = Session(model)
    before = snapshot(model)
    path = folder / "mlp.pt"
    exporter = EXPORTERS["torchscript"]
    original = getattr(exporter, fail_at, None)

    def broken(self, *args):
        raise RuntimeError(f"injected failure in {fail_at}")

    if original is not None:
        setattr(exporter, fail_at, broken)
    try:
        if fail_at == "none":
            export_model(session, path, "torchscript")
        else:
            with pytest.raises(ExportError, match=f"injected failure in {fail_at}"):
                export_model(session, path, "torchscript")
    finally:
        if original is not None:
            setattr(exporter, fail_at, original)
    assert_same(before, snapshot(model))
    assert path.exists() == (fail_at == "none")
    assert leftovers(folder) == []
    assert session.busy_reason is None


# ---------------------------------------------------------------------------- failures
@pytest.mark.parametrize("fmt", ["pt2", pytest.param("onnx", marks=needs_onnx)])
def test_data_dependent_control_flow_fails_in_one_line_naming_the_module(tmp_path, fmt,
                                                                          capfd):
    session = Session(seeded(Gated))
    before = snapshot(session.model)
    path = tmp_path / f"gated{SUFFIX[fmt]}"
    with pytest.raises(ExportError) as raised:
        export_model(session, path, fmt, dynamic_batch=True)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{fmt}: cannot export module 'gate' (Gate.forward at "
                              "models.py:")
    assert "`if y.sum() > 0:`" in message
    assert "data-dependent control flow" in message
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    assert_same(before, snapshot(session.model))
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""  # the exporters' dumps and hints stay quiet


def test_torchscript_scripts_data_dependent_control_flow_and_verifies_it(tmp_path):
    session = Session(seeded(Gated))
    path, report = export_everywhere(session, tmp_path, "torchscript")
    assert report.method == "torch.jit.script"
    loaded = jit_load(path)
    for sign in (1.0, -1.0):  # inputs that take each branch
        inputs = torch.full((1, 8), sign)
        while (session.model.gate.lin(session.model.inp(inputs)).sum() > 0) != (sign > 0):
            inputs = inputs * -1.5 + 0.3
        torch.testing.assert_close(loaded(inputs), eval_output(session.model, inputs))


@needs_onnx
def test_an_op_onnx_cannot_translate_is_named(tmp_path):
    session = Session(seeded(CumMax))
    path = tmp_path / "cummax.onnx"
    with pytest.raises(ExportError) as raised:
        export_model(session, path, "onnx")
    message = str(raised.value)
    assert message == ("onnx: cannot export the model (CumMax): aten.cummax.default has no "
                       "ONNX translation in this exporter (torch.onnx.export(dynamo=True)); "
                       "export pt2 or TorchScript instead")
    assert list(tmp_path.iterdir()) == []


def test_a_verification_above_the_tolerance_fails_and_keeps_the_old_file(tmp_path,
                                                                         monkeypatch):
    session = Session(seeded(MLP))
    path = tmp_path / "mlp.pt2"
    path.write_bytes(b"the previous export")
    exporter = EXPORTERS["pt2"]
    run = exporter.run
    monkeypatch.setattr(exporter, "run",
                        lambda self, inputs: [output + 1e-2 for output in run(self, inputs)])
    with pytest.raises(ExportError) as raised:
        export_model(session, path, "pt2")
    message = str(raised.value)
    assert message.startswith("pt2: verification failed: the export differs from the live "
                              "model by ")
    assert "above the tolerance 0.0001; nothing was written" in message
    assert path.read_bytes() == b"the previous export"
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    report = export_model(session, path, "pt2", tolerance=0.5)
    assert path.read_bytes() != b"the previous export"
    assert report.tolerance == 0.5


def test_cancel_stops_at_the_next_stage_and_writes_nothing(tmp_path):
    session = Session(seeded(MLP))
    before = snapshot(session.model)
    seen: list[str] = []
    progress = Progress(lambda fraction, text: seen.append(text))
    original = progress.update

    def update(fraction: float, text: str = "") -> None:
        if text == "writing":
            progress.cancel()
        original(fraction, text)

    progress.update = update  # type: ignore[method-assign]
    with pytest.raises(Cancelled):
        export_model(session, tmp_path / "mlp.pt2", "pt2", progress=progress)
    assert "exporting ExportedProgram (.pt2)" in seen
    assert list(tmp_path.iterdir()) == []
    assert_same(before, snapshot(session.model))
    assert session.busy_reason is None


def test_missing_onnx_packages_are_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(export_options, "missing_onnx_packages", lambda: ["onnxscript"])
    with pytest.raises(ExportError) as raised:
        export_model(Session(seeded(MLP)), tmp_path / "m.onnx", "onnx")
    assert str(raised.value) == (
        "onnx export needs onnxscript (not installed): pip install 'weightsmith[deploy]' "
        "(or pip install onnx onnxscript onnxruntime)")
    assert list(tmp_path.iterdir()) == []


def test_the_core_install_does_not_import_onnx():
    import subprocess
    import sys

    code = ("import sys, engine.export, engine.export.run, cli.commands.export; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('onnx', 'onnxscript', 'onnxruntime', 'onnx_ir')); print(bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2], check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("call", "message"), [
    (lambda s, d: export_model(s, d / "m.pt2", "zip"),
     "export.format: 'zip' is not one of pt2, onnx, torchscript"),
    (lambda s, d: export_model(s, d / "m.pt2", "onnx"),
     "the name says pt2 but the format is onnx; name it m.onnx or use --format pt2"),
    (lambda s, d: export_model(s, d / "missing" / "m.pt2", "pt2"),
     "m.pt2: folder"),
    (lambda s, d: export_model(s, d, "pt2"), "is a folder; give a file name"),
    (lambda s, d: export_model(s, d / "m.pt2", "pt2", opset=18),
     "export.opset: only ONNX has an opset"),
    (lambda s, d: export_model(s, d / "m.onnx", "onnx", opset=9),
     "export.opset: expected an integer of at least 18"),
    pytest.param(lambda s, d: export_model(s, d / "m.onnx", "onnx", opset=99),
                 "export.opset: 99 is newer than onnx", marks=needs_onnx),
    (lambda s, d: export_model(s, d / "m.pt2", "pt2", input_shape=[4096, 4096, 64]),
     "export.input_shape: a batch of 1,073,741,824 input elements is too large"),
    (lambda s, d: export_model(s, d / "m.pt2", "pt2", batch_size=0),
     "export.batch_size: expected a positive integer"),
    (lambda s, d: export_model(s, d / "m.pt2", "pt2", input_shape=[0]),
     "export.input_shape: expected a list of positive sizes"),
    (lambda s, d: export_model(s, d / "m.pt2", "pt2", input_shape=[7]),
     "export.input_shape: input shape [7] does not fit the model"),
    (lambda s, d: export_model(s, d / "m.pt2", "pt2", colour="red"),
     "export.colour: unknown option"),
    (lambda s, d: export_model(s, d / "m.pt2", "pt2", torchscript_method="trace"),
     "export.torchscript_method: only for the torchscript format"),
    (lambda s, d: export_model(s, d / "m.pt2", "pt2", tolerance=-1),
     "export.tolerance: expected a number >= 0"),
    (lambda s, d: export_model(s, d / "m.bin", None),
     "cannot tell the format from the name"),
])
def test_bad_options_are_one_line_and_nothing_is_written(tmp_path, call, message):
    session = Session(seeded(MLP))
    with pytest.raises(ExportError) as raised:
        call(session, tmp_path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert [child for child in tmp_path.iterdir() if child.is_file()] == []


def test_the_format_follows_the_name_when_not_given(tmp_path):
    report = export_model(Session(seeded(MLP)), tmp_path / "m.pt2")
    assert report.format == "pt2"


def test_a_checkpoint_or_busy_session_is_refused(tmp_path):
    checkpoint = Session(checkpoint={"w": torch.zeros(2)})
    with pytest.raises(EditError, match="export: needs a model"):
        export_model(checkpoint, tmp_path / "m.pt2", "pt2")
    session = Session(seeded(MLP))
    with session.busy("a test training is running"), \
            pytest.raises(EditError, match="busy: a test training is running"):
        export_model(session, tmp_path / "m.pt2", "pt2")
    assert list(tmp_path.iterdir()) == []


def test_tied_weights_of_a_plain_model_are_stored_once(tmp_path):
    session = Session(seeded(TiedLM))
    for fmt in ("pt2", "torchscript"):
        _, report = export_everywhere(session, tmp_path, fmt)
        assert [(tie.names, tie.copies) for tie in report.tied] == [
            (["embed.weight", "lm_head.weight"], 1)]


def test_the_export_is_the_only_file_and_keeps_the_umask_mode(tmp_path):
    path, _ = export_everywhere(Session(seeded(MLP)), tmp_path, "pt2")
    assert sorted(child.name for child in tmp_path.iterdir()) == ["model.pt2"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------------------- verify
def test_relative_difference_is_against_the_largest_output_magnitude():
    reference = torch.tensor([100.0, 0.0, -2.0])
    actual = torch.tensor([100.0, 0.5, -2.0])
    assert tensor_difference(reference, actual) == (0.5, 0.005)
    nan = torch.tensor([float("nan"), 1.0])
    assert tensor_difference(nan, nan.clone()) == (0.0, 0.0)
    assert tensor_difference(nan, torch.tensor([0.0, 1.0]))[0] == float("inf")
    assert tensor_difference(torch.zeros(3), torch.full((3,), 1e-9))[1] == float("inf")


def test_integer_outputs_must_match_exactly_and_shapes_must_agree():
    same = compare([torch.tensor([1, 2])], [torch.tensor([1, 2])], 1, "pt2")
    assert (same.max_abs, same.max_rel) == (0.0, 0.0)
    with pytest.raises(ExportError, match=r"output 0 \(torch.int64\) differs"):
        compare([torch.tensor([1, 2])], [torch.tensor([1, 3])], 1, "pt2")
    with pytest.raises(ExportError, match=r"output 0 has shape \[3\], the model's \[2\]"):
        compare([torch.zeros(2)], [torch.zeros(3)], 1, "pt2")
    with pytest.raises(ExportError, match="gives 2 output tensor"):
        compare([torch.zeros(2)], [torch.zeros(2), torch.zeros(2)], 1, "pt2")


class TwoOutputs(nn.Module):
    """Returns a dict without logits: an export takes any output, every tensor compared."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.lin(x)
        return {"features": y, "scores": y.softmax(-1)}


@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_every_output_tensor_is_compared(tmp_path, fmt):
    _, report = export_everywhere(Session(seeded(TwoOutputs)), tmp_path, fmt)
    assert [difference.outputs for difference in report.differences] == [2]
    assert report.max_rel <= 1e-4
