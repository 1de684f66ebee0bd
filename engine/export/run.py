"""Export a Session's live model for deployment, verified before it is reported written.

The steps: validate the options and the output path; probe the input the model takes;
put every module in eval mode (their modes are recorded and put back exactly at the
end, whatever happens); export; write the artifact into a private folder beside OUT;
load it back with the format's own runtime; run it on fresh inputs (at two batch sizes
when the batch is dynamic) and compare with the live model; check that tied tensors
are stored once; only then move the files into place. Any failure is one line
(ExportError) and leaves OUT as it was. The session refuses edits meanwhile.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import EditError, ExportError
from ..progress import Cancelled, Progress, report
from ..tracing import one_trace_at_a_time
from ..training.model_io import first_line, kept_modes, model_placement, resolve_device
from .base import Exporter
from .failures import explain
from .inputs import EXAMPLE_SEED, ExampleInputs, deployable, probe_inputs
from .onnx_file import OnnxExporter
from .options import TOLERANCES, ExportOptions, check_output_path, require_onnx
from .pt2 import Pt2Exporter
from .quiet import quiet_exporters
from .report import ExportReport, TieCheck
from .torchscript import TorchScriptExporter
from .verify import Difference, check_within, compare, output_tensors
from .writing import staged_output

if TYPE_CHECKING:
    from ..session import Session

EXPORTERS: dict[str, type[Exporter]] = {
    "pt2": Pt2Exporter, "onnx": OnnxExporter, "torchscript": TorchScriptExporter}
#: why the session refuses edits while an export runs
EXPORTING = "an export for deployment is running"
#: the seed of the trace checker's input; verification batch b uses VERIFY_SEED + b
CHECK_SEED = 7
VERIFY_SEED = 1000


def export_model(session: Session, path: str | Path, format: str | None = None, *,
                 progress: Progress | None = None, **options: Any) -> ExportReport:
    """Export the session's model to `path` as pt2, onnx or torchscript, verified.

    Parameters
    ----------
    session : a Session in model mode; its model is left exactly as it was (values,
        objects, train/eval modes); edits are refused while the export runs
    path : the file to write (.pt2, .onnx, or e.g. .pt for TorchScript)
    format : "pt2", "onnx" or "torchscript"; None takes it from the name (.pt2, .onnx)
    progress : reports stages; a cancel stops at the next stage, nothing written
    options : see `ExportOptions` (input_shape, batch_size, dynamic_batch, opset,
        device, tolerance, torchscript_method)

    Returns
    -------
    ExportReport : the differences measured, the mode, the tie check, the notes

    Raises
    ------
    ExportError : bad options, a model that cannot be exported (names the module or
        op and why), a verification above the tolerance; nothing was written
    EditError : the session has no model or is busy
    Cancelled : cancelled through `progress`; nothing was written
    """
    if format is None:
        from .options import format_of_name

        format = format_of_name(path)
        if format is None:
            raise ExportError(f"{path}: cannot tell the format from the name; give "
                              "format pt2, onnx or torchscript")
    settings = ExportOptions.from_dict({"format": format, **options})
    output = check_output_path(path, settings.format)
    session.document.check_model("export")
    if settings.format == "onnx":
        require_onnx()
    model = session.document.model
    with session.busy(EXPORTING):
        return _export(model, session.document.tie_groups(), output, settings, progress)


def _export(model: nn.Module, tie_groups: list[list[str]], output: Path,
            settings: ExportOptions, progress: Progress | None) -> ExportReport:
    seconds: dict[str, float] = {}
    live_device, dtype = model_placement(model)
    device = live_device if settings.device is None else _device(settings.device)
    modes = [module.training for module in model.modules()]
    exporter = EXPORTERS[settings.format](settings)
    with kept_modes(model), quiet_exporters() as caught:
        model.eval()
        source = model if device == live_device else _moved(model, device)
        target, notes = deployable(source)
        target.eval()
        first_check = settings.check_batches()[0]
        with _timed(seconds, "probe"):
            report(progress, 0.02, "probing the input")
            # On the module that is exported (the Hugging Face view gives the outputs
            # the artifact gives) and on the first verification batch: its output is
            # the live model's reference there, computed once.
            inputs, probed = probe_inputs(target, dtype, device, settings.input_shape,
                                          first_check, VERIFY_SEED + first_check)
        references = {first_check: output_tensors(probed)}
        batch = settings.export_batch()
        report(progress, 0.08, f"exporting {exporter.label}")
        with _timed(seconds, "export"):
            try:
                with one_trace_at_a_time(progress):  # never beside another trace
                    exporter.export(target, inputs.batch(batch, EXAMPLE_SEED),
                                    target is not source, inputs.batch(batch, CHECK_SEED))
            except (ExportError, Cancelled):
                raise
            except MemoryError:
                raise ExportError(f"{settings.format}: out of memory while exporting") from None
            except Exception as error:
                raise ExportError(explain(error, source, settings.format, exporter.tool,
                                          target)) from None
        report(progress, 0.6, "writing")
        with staged_output(output) as staged:
            with _timed(seconds, "save"):
                _step(settings.format, "could not be written", exporter.save, staged.path)
            report(progress, 0.7, f"loading with {exporter.runtime}")
            with _timed(seconds, "load"):
                _step(settings.format, f"{exporter.runtime} could not load the export",
                      exporter.load, staged.path)
            differences = _verify(target, exporter, inputs, references, settings, dtype,
                                  seconds, progress)
            report(progress, 0.92, "checking tied weights")
            with _timed(seconds, "ties"):
                tied = _ties(model, tie_groups, exporter)
            report(progress, 0.96, "moving into place")
            start = time.perf_counter()  # the move happens as the block ends
        seconds["commit"] = time.perf_counter() - start
        notes = notes + exporter.notes + _tracer_notes(caught)
    # No progress report after the move: a cancel arriving now must not call a written,
    # verified file "cancelled".
    return ExportReport(
        format=settings.format, label=exporter.label, path=str(output),
        files=[str(path) for path in staged.files], size_bytes=staged.size(),
        method=exporter.method, runtime=exporter.runtime,
        input=inputs.describe("batch" if settings.dynamic_batch else settings.batch_size),
        dynamic_batch=settings.dynamic_batch, differences=differences,
        tolerance=_tolerance(settings, dtype), modules_in_train_mode=sum(modes),
        modules=len(modes), device=str(device), tied=tied, notes=notes, seconds=seconds)


def _verify(target: nn.Module, exporter: Exporter, inputs: ExampleInputs,
            references: dict[int, list[torch.Tensor]], settings: ExportOptions,
            dtype: torch.dtype, seconds: dict[str, float],
            progress: Progress | None) -> list[Difference]:
    """Run the loaded artifact and the live model on fresh inputs; compare; enforce.

    `references` holds the live model's outputs already computed (by the probe), by
    batch size; the others are computed here.
    """
    tolerance = _tolerance(settings, dtype)
    differences = []
    batches = settings.check_batches()
    with _timed(seconds, "verify"):
        for index, batch in enumerate(batches):
            report(progress, 0.75 + 0.15 * index / len(batches),
                   f"verifying at batch {batch}")
            sample = inputs.batch(batch, VERIFY_SEED + batch)
            live = references.get(batch)
            if live is None:
                with torch.no_grad():
                    live = output_tensors(target(sample))
            exported = _step(settings.format, f"{exporter.runtime} could not run the export "
                             f"at batch {batch}", exporter.run, sample)
            difference = compare(live, exported, batch, settings.format)
            check_within(difference, tolerance, settings.format)
            differences.append(difference)
    return differences


def _ties(model: nn.Module, tie_groups: list[list[str]], exporter: Exporter) -> list[TieCheck]:
    """How many copies of each tied tensor the artifact stores."""
    checks = []
    state = {name: tensor for name, tensor in
             list(model.named_parameters(remove_duplicate=False))
             + list(model.named_buffers(remove_duplicate=False))}
    for names in tie_groups:
        tensor = next((state[name] for name in names if name in state), None)
        if tensor is None:
            continue
        copies = exporter.stored_copies(names, tensor)
        checks.append(TieCheck(list(names), copies))
    return checks


def _tolerance(settings: ExportOptions, dtype: torch.dtype) -> float:
    if settings.tolerance is not None:
        return float(settings.tolerance)
    return TOLERANCES.get(dtype, 1e-4)


def _step(fmt: str, what: str, function: Any, *args: Any) -> Any:
    """Run one stage after the export; any failure is one line naming the stage."""
    try:
        return function(*args)
    except (ExportError, Cancelled):
        raise
    except MemoryError:
        raise ExportError(f"{fmt}: out of memory ({what})") from None
    except Exception as error:
        raise ExportError(f"{fmt}: {what}: {type(error).__name__}: "
                          f"{first_line(error)[:200]}; nothing was written") from None


def _device(name: str) -> torch.device:
    try:
        return resolve_device(name, field="export.device")
    except EditError as error:
        raise ExportError(str(error)) from None


def _moved(model: nn.Module, device: torch.device) -> nn.Module:
    """A copy of the model on `device` (ties kept); the live model stays where it is."""
    return copy.deepcopy(model).to(device)


def _tracer_notes(caught: list[Any]) -> list[str]:
    """The tracer's warnings that a trace may not generalize, once each, briefly."""
    notes = []
    for warning in caught:
        if warning.category.__name__ != "TracerWarning":
            continue
        text = first_line(warning.message if isinstance(warning.message, BaseException)
                          else Exception(str(warning.message)))
        note = f"tracer: {text.split('. ')[0]} ({Path(warning.filename).name}:{warning.lineno})"
        if note not in notes:
            notes.append(note)
    return notes[:5]


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
