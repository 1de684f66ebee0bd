"""Deployment export benchmark (issue 14): `export_model` against calling the exporter by hand.

By hand is what one writes without Weightsmith, in the same process on the same model
(torchvision resnet50, eval mode) with the same example input:

- pt2: `torch.export.save(torch.export.export(model, (x,)), path)`
- onnx: `torch.onnx.export(model, (x,), dynamo=True).save(path)`
- torchscript: `torch.jit.script(model).save(path)` (what `auto` picks for resnet50)

`export_model` adds the shape probe (one forward pass of the live model, on the first
verification batch: it is the reference there), eval mode with the modes put back, the
write into a private folder, loading the file back with its own runtime, running it on
fresh inputs (one batch size, or two with a dynamic batch: the second also runs the
live model), the tie check, fsync and the move into place. Runs alternate (who goes first
alternates too) after one warm-up of each; medians are compared, wall clock and
process CPU time. Where the time goes is the median of the stages the report times.

Run: .venv/bin/python benchmarks/bench_export.py [--repeats N] [--threads N]
     [--formats pt2,onnx,torchscript] [--dynamic]
Writes docs/benchmarks/export.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import write_fragment
from engine import Session
from engine.export import export_model
from engine.export.options import missing_onnx_packages

SUFFIX = {"pt2": ".pt2", "onnx": ".onnx", "torchscript": ".pt"}
STAGES = ("probe", "export", "save", "load", "verify", "ties", "commit")


def by_hand(fmt: str, model: torch.nn.Module, example: torch.Tensor, path: Path,
            dynamic: bool) -> None:
    """The exporter called the way its documentation shows, nothing else."""
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic else None
    if fmt == "pt2":
        torch.export.save(torch.export.export(model, (example,), dynamic_shapes=shapes), path)
    elif fmt == "onnx":
        torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                          dynamic_shapes=shapes).save(str(path))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.script(model).save(str(path))


def timed(function: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def measure(fmt: str, session: Session, folder: Path, repeats: int,
            dynamic: bool) -> dict[str, object]:
    model = session.model
    assert model is not None
    batch = 2 if dynamic else 1
    example = torch.randn(batch, 3, 64, 64)  # the shape the probe proposes for resnet50
    ours_path = folder / f"ours{SUFFIX[fmt]}"
    hand_path = folder / f"hand{SUFFIX[fmt]}"

    def ours() -> object:
        return export_model(session, ours_path, fmt, dynamic_batch=dynamic)

    def hand() -> None:
        model.eval()
        by_hand(fmt, model, example, hand_path, dynamic)

    ours()  # warm-up: first calls pay one-time costs (imports, kernels) on both sides
    hand()
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "hand": []}
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    report = None
    for index in range(repeats):
        order = [("ours", ours), ("hand", hand)]
        if index % 2:
            order.reverse()
        for name, function in order:
            os.sync()  # outside the timing: both sides start with no dirty pages of ours
            wall, cpu, result = timed(function)
            runs[name].append((wall, cpu))
            if name == "ours":
                report = result
                for stage in STAGES:
                    stages[stage].append(report.seconds.get(stage, 0.0))
    return {"runs": runs, "stages": stages, "report": report}


def median_of(runs: list[tuple[float, float]], index: int) -> float:
    return statistics.median(run[index] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--formats", default="pt2,onnx,torchscript")
    parser.add_argument("--dynamic", action="store_true", help="also with --dynamic-batch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import torchvision

    formats = [fmt for fmt in args.formats.split(",")
               if fmt != "onnx" or not missing_onnx_packages()]
    torch.manual_seed(0)
    session = Session(torchvision.models.resnet50())
    folder = Path(tempfile.mkdtemp(prefix="bench-export-"))
    rows = []
    stage_rows = []
    try:
        for dynamic in (False, True) if args.dynamic else (False,):
            for fmt in formats:
                result = measure(fmt, session, folder, args.repeats, dynamic)
                runs = result["runs"]
                ours_wall, hand_wall = median_of(runs["ours"], 0), median_of(runs["hand"], 0)
                ours_cpu, hand_cpu = median_of(runs["ours"], 1), median_of(runs["hand"], 1)
                report = result["report"]
                label = f"{fmt}{', dynamic batch' if dynamic else ''}"
                rows.append(f"| {label} | {hand_wall:.2f} | {ours_wall:.2f} | "
                            f"**{ours_wall / hand_wall:.2f}x** | {hand_cpu:.2f} | {ours_cpu:.2f} | "
                            f"{ours_cpu / hand_cpu:.2f}x | {report.max_rel:.2g} |")
                medians = {stage: statistics.median(values)
                           for stage, values in result["stages"].items()}
                checking = medians["load"] + medians["verify"]
                stage_rows.append(f"| {label} | " + " | ".join(
                    f"{medians[stage]:.2f}" for stage in STAGES)
                    + f" | {checking / hand_wall:.2f}x | {1 + checking / hand_wall:.2f}x |")
                print(rows[-1], stage_rows[-1], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    text = f"""## Export for deployment (issue 14)

Time to export torchvision resnet50 (25.6M parameters, eval mode, input 1x3x64x64: the
shape the probe proposes) with `engine.export.export_model`, the verification included,
against calling the exporter by hand in the same run, measured with
`benchmarks/bench_export.py`. Target: **<= 1.2x**.

By hand: pt2 `torch.export.save(torch.export.export(model, (x,)), path)`; onnx
`torch.onnx.export(model, (x,), dynamo=True).save(path)`; torchscript
`torch.jit.script(model).save(path)`. `export_model` adds the shape probe (one forward of
the live model, on the first verification batch, whose output is the reference there),
eval mode and the modes put back, the write into a private folder, loading the file back
with its own runtime, one forward of the artifact per verified batch size (two with a
dynamic batch; the second batch also runs the live model), the tie check, fsync and the
move into place.

{platform.machine()}, torch {torch.__version__}, {args.threads} torch thread(s);
{args.repeats} alternating runs per side after one warm-up each, medians; load average at
the end {load} on {os.cpu_count()} cores (a shared machine).

| format | by hand (s) | export_model (s) | **ratio** | by hand CPU (s) | export_model CPU (s) | ratio CPU | max rel diff |
| --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Where `export_model`'s time goes (median seconds per stage, from the report's timings):

| format | probe | export | save | load | verify | ties | commit | load + verify, of by hand | lowest ratio with the verification |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(stage_rows)}

*Lowest ratio with the verification* is 1 + (load + verify) / by hand: what the ratio
would be if everything else `export_model` does cost nothing. On a loaded machine the wall
clock mostly measures waiting for a core (by hand, pt2 took 1.4 s of CPU time and 3-8 s of
wall time in the same run), so the CPU ratio is the steadier figure; both are medians of
the same runs.

What the verification no longer repeats (measured against the tree before, same script,
run just before at load 10-12: CPU ratios pt2 1.64x, onnx 1.19x, torchscript 2.01x; with
a dynamic batch 1.63x, 1.12x, 2.17x; wall 1.32x, 1.62x, 2.20x; 1.32x, 1.10x, 2.13x):

- **pt2**: `torch.export.load` looked up `typing.get_type_hints` 10,094 times for the same
  few dozen schema dataclasses while turning the JSON graph into them (a third to a half of
  the load). The load now runs with those lookups cached for its duration
  (`engine/export/schema_hints.py`: torch's deserializer module sees a `typing` whose
  `get_type_hints` remembers a class's hints; the module's own `typing` is put back when the
  load ends). Same file, same deserializer, same program: alone on this machine the load
  went from 0.9-1.5 s to 0.45-0.6 s.
- **TorchScript**: the loaded module runs with `torch.jit.optimized_execution(False)`. The
  profiling executor made each of its first calls 3-4x a forward (0.32-0.42 s against
  0.10 s for resnet50 at batch 1) and a verification only ever makes first calls. A server's
  first call runs the same unoptimized graph, and on the CPU the optimized graph calls the
  same kernels: outputs were bit-identical with and without, over six calls at batch 1 and 2.
- **Every format**: the probe's forward pass (one is needed to find or check the input
  shape) runs on the first verification batch, and its output is the live model's
  reference there, so the live model runs once fewer (0.06-0.1 s for resnet50 at 64x64).

What is left, and why it stays: pt2's load (0.45-0.9 s: the JSON graph into dataclasses,
fake tensors for 496 nodes, 100 MB of weights) and `module()` (0.15-0.2 s) are the path a
deployment takes; TorchScript's scripting and save take about 0.8 s, against which the load
(0.17 s), one forward of the artifact (0.08 s), the live model's (the probe, 0.1 s) and
fsync before the move into place (0.08 s) add 0.4 s or so. So with a verification that
loads the artifact with its own runtime and runs it, 1.2x is met for ONNX, not for pt2
(about 1.3-1.5x) or TorchScript (1.3-1.9x CPU).
"""
    write_fragment("export", text)


if __name__ == "__main__":
    main()
