"""Core benchmarks: edits and undo, a 100k-name checkpoint, open-edit-save, `inspect`,
each timed against an earlier version of the code in the same run.

Run: .venv/bin/python benchmarks/bench_core.py --compare-tree DIR [--repeats N]
(DIR: a checkout of the earlier version, e.g. `git archive REV | tar -x -C DIR`).
Writes docs/benchmarks/core.md. Every workload runs in a child process per side, the
sides alternating, so both see the same load; figures are medians, ratios new/old.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import median, write_fragment  # noqa: E402

#: each snippet prints the seconds of its timed part; they use only API both versions have
WORKLOADS = {
    "edits": ("20 rounds of scale, freeze, init and three undos on resnet18", """
import time, torch, torchvision
from engine import Session
torch.manual_seed(0)
s = Session(torchvision.models.resnet18())
start = time.perf_counter()
for _ in range(20):
    s.apply({"op": "scale", "targets": ["layer1.*"], "value": 1.5})
    s.apply({"op": "freeze", "targets": ["*"], "except": ["fc"]})
    s.apply({"op": "init", "targets": ["fc"], "param": "weight", "method": "kaiming_normal",
             "seed": 0})
    s.undo(); s.undo(); s.undo()
print(time.perf_counter() - start)
"""),
    "checkpoint": ("100,000-name checkpoint: listing, tree top level, regex rename and undo", """
import time, torch
from engine import Session
from engine.listing import listing
from engine.tree import TreeIndex
names = {f"block.{i // 100}.layer.{i % 100}.weight": torch.zeros(2) for i in range(100_000)}
s = Session(checkpoint=names)
start = time.perf_counter()
listing(s)
TreeIndex(s).warm()
s.apply({"op": "rename", "pattern": "^block", "replacement": "blk"})
s.undo()
print(time.perf_counter() - start)
"""),
    "files": ("open a 256 MiB .safetensors (64 tensors), scale one, save", """
import sys, time
from engine import Session
start = time.perf_counter()
s = Session.open(sys.argv[1])
s.apply({"op": "scale", "targets": ["t0"], "value": 2.0})
s.save(sys.argv[2])
print(time.perf_counter() - start)
"""),
}


def _child(tree: Path, code: str, *args: str) -> float | str:
    """Seconds of the snippet's timed part, or the last line of its error when it failed."""
    env = {**os.environ, "PYTHONPATH": str(tree), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {result.returncode}"
    return float(result.stdout.strip().splitlines()[-1])


def _cell(values: list[float | str]) -> str:
    """The median in seconds, or the first failure (a failed run has no time)."""
    failures = [value for value in values if isinstance(value, str)]
    if failures:
        return f"failed {len(failures)} of {len(values)}: {failures[0]}"
    return f"{median(values):.3f} s"


def _inspect(tree: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "main.py", "inspect", "--arch", "torchvision:resnet50",
                    "--json"], cwd=tree, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare-tree", type=Path, required=True, metavar="DIR")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    old = args.compare_tree.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        import torch
        from safetensors.torch import save_file

        source = Path(scratch) / "in.safetensors"
        save_file({f"t{i}": torch.randn(1024, 1024) for i in range(64)}, str(source))
        times: dict[str, dict[str, list[float]]] = {}
        for _ in range(args.repeats):
            for name, (_, code) in WORKLOADS.items():
                for side, tree in (("old", old), ("new", ROOT)):
                    extra = (str(source), str(Path(scratch) / f"out-{side}.safetensors")) \
                        if name == "files" else ()
                    times.setdefault(name, {}).setdefault(side, []).append(
                        _child(tree, code, *extra))
                    if name == "files":
                        os.sync()
            for side, tree in (("old", old), ("new", ROOT)):
                times.setdefault("inspect", {}).setdefault(side, []).append(_inspect(tree))
    rows = []
    described = {**{name: text for name, (text, _) in WORKLOADS.items()},
                 "inspect": "`python main.py inspect --arch torchvision:resnet50 --json`, "
                            "whole process"}
    for name, sides in times.items():
        ratio = "-"
        if not any(isinstance(value, str) for value in sides["old"] + sides["new"]):
            ratio = f"**{median(sides['new']) / median(sides['old']):.2f}x**"
        rows.append(f"| {described[name]} | {_cell(sides['old'])} | {_cell(sides['new'])} | "
                    f"{ratio} |")
    load = os.getloadavg()[0]
    text = "\n".join([
        "## Core after the Document/Session redesign (issue 10)",
        "",
        f"Measured with `benchmarks/bench_core.py --compare-tree {old.name}` on "
        f"{platform.machine()}, 2 CPU cores, torch {torch.__version__}, on a shared machine "
        f"(load average {load:.1f} at the end); median of {args.repeats} runs per side, the "
        "sides alternating. `before` is the version just before the redesign landed.",
        "",
        "| workload | before | after | after / before |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ])
    write_fragment("core", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
