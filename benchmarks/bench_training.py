"""Test-training benchmark (issue 5): the trainer's steps per second against a plain loop.

The plain loop is what one would write by hand: the same model (same starting weights),
the same data on the same device, the same shuffling (a fresh permutation per pass,
batches by indexing), the same batch size, optimizer and precision, train mode,
`zero_grad` / `backward` / `step`, and no host sync per step. The trainer adds what it
needs to verify the run: losses and accuracies kept on the device and read at 10 Hz,
a cancel check per step, and (outside the loop) the snapshot for Discard, digests of
the frozen tensors and the report.

Runs are interleaved (trainer, plain, trainer, plain, ...) after one warm-up of each,
so machine noise hits both alike; the medians are compared.

Run: .venv/bin/python benchmarks/bench_training.py [--repeats N] [--device cpu|cuda]
     [--precision fp32|bf16] [--threads N] [--fragment NAME]
Writes docs/benchmarks/<NAME>.md (default: training.md; use another name for a GPU run
so the CPU figures are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import FRAGMENTS, median, write_fragment
from engine import Session
from engine.demo import demo_model
from engine.edits.freeze import set_train_mode
from engine.training import TrainConfig, Trainer
from engine.training.data import open_data
from engine.training.model_io import logits_of
from engine.training.task import compute_loss


@dataclass
class Workload:
    """One model with its data and settings."""

    name: str
    build: Callable[[], nn.Module]
    settings: dict
    frozen: list[str]


def workloads(device: str, precision: str) -> list[Workload]:
    import torchvision

    common = {"device": device, "precision": precision, "seed": 0}
    return [
        Workload("demo CNN, demo digits, batch 64, Adam, backbone frozen",
                 demo_model, {"data": "demo", "batch_size": 64, "steps": 400,
                              "optimizer": "adam", **common}, ["features"]),
        Workload("demo CNN, demo digits, batch 64, SGD, all trainable",
                 demo_model, {"data": "demo", "batch_size": 64, "steps": 400,
                              "optimizer": "sgd", **common}, []),
        Workload("resnet18, synthetic 3x64x64, batch 32, SGD momentum",
                 lambda: torchvision.models.resnet18(num_classes=10),
                 {"data": "synthetic", "batch_size": 32, "steps": 30 if device == "cpu"
                  else 300, "optimizer": "sgd", "lr": 0.01, **common}, []),
        Workload("tiny MLP (6-32-4), synthetic, batch 32, SGD: the per-step overhead",
                 lambda: nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 4)),
                 {"data": "synthetic", "batch_size": 32, "steps": 3000, "samples": 1024,
                  "optimizer": "sgd", **common}, []),
    ]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, task: str,
               config: TrainConfig, device: torch.device) -> tuple[float, float]:
    """Train by hand; return the loop's wall seconds (the optimizer built before the clock)
    and the CPU seconds of this thread, optimizer included."""
    cpu_start = time.thread_time()
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    else:
        optimizer = torch.optim.Adam(params, lr=config.lr)
    set_train_mode(model, True)
    generator = torch.Generator().manual_seed(0)
    batch = config.batch_size
    count = inputs.shape[0]
    dtype = {"bf16": torch.bfloat16}.get(config.precision)
    autocast = (torch.autocast(device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())
    synchronize(device)
    start = time.perf_counter()
    step = 0
    while step < config.steps:
        order = torch.randperm(count, generator=generator).to(device)
        for first in range(0, count - batch + 1, batch):
            if step == config.steps:
                break
            index = order[first:first + batch]
            with autocast:
                loss = compute_loss(task, logits_of(model(inputs[index])), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
    loss.item()  # wait for the device, like the trainer's last read
    synchronize(device)
    return time.perf_counter() - start, time.thread_time() - cpu_start


def measure(workload: Workload, repeats: int) -> dict:
    torch.manual_seed(0)
    model = workload.build()
    session = Session(model)
    if workload.frozen:
        session.apply({"op": "freeze", "targets": workload.frozen, "bn_eval": True})
    config = TrainConfig.from_dict(workload.settings)
    trainer = Trainer(session, config)
    twin = copy.deepcopy(model)  # the plain loop's own model, reset before each run
    start_state = copy.deepcopy(model.state_dict())
    source = open_data(config, model, seed=0)
    task = "classification"
    device = torch.device("cuda") if config.device == "cuda" else torch.device(config.device)
    _, dtype = next((p.device, p.dtype) for p in model.parameters())
    inputs = source.inputs.to(device=device, dtype=dtype)
    targets = source.targets.to(device)
    twin.to(device)

    def run_trainer() -> tuple[float, float, float]:
        start, cpu_start = time.perf_counter(), time.thread_time()
        result = trainer.run()
        total, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
        result.discard()
        return result.report.seconds, total, cpu

    def run_plain() -> tuple[float, float]:
        twin.load_state_dict(start_state)
        return plain_loop(twin, inputs, targets, task, config, device)

    run_trainer()  # warm-up: first optimizer, allocator, kernels
    run_plain()
    trainer_runs, plain_runs = [], []
    for repeat in range(repeats):
        if repeat % 2:  # alternate who goes first, so neither always runs on a warmer cache
            plain_runs.append(run_plain())
        trainer_runs.append(run_trainer())
        if not repeat % 2:
            plain_runs.append(run_plain())
    steps = config.steps
    loop = median([run[0] for run in trainer_runs])
    total = median([run[1] for run in trainer_runs])
    # Each trainer run against the plain run next to it: both saw the same machine load.
    paired = median([plain[0] / run[0] for run, plain in zip(trainer_runs, plain_runs,
                                                             strict=True)])
    # The least disturbed run of each side: other processes can only slow a run down.
    best = min(plain[0] for plain in plain_runs) / min(run[0] for run in trainer_runs)
    cpu = (min(plain[1] for plain in plain_runs) / min(run[2] for run in trainer_runs)
           if device.type == "cpu" and torch.get_num_threads() == 1 else None)
    return {"name": workload.name, "steps": steps, "plain": steps / median(
                [plain[0] for plain in plain_runs]),
            "trainer": steps / loop, "trainer_total": steps / total, "paired": paired,
            "best": best, "cpu": cpu, "setup": total - loop}


def fragment(rows: list[dict], args: argparse.Namespace, device_name: str) -> str:
    """A Markdown section for this configuration (with the fragment's heading unless
    `--append`)."""
    setups = ", ".join(f"{row['setup'] * 1000:.0f} ms" for row in rows)
    lines = []
    if not args.append:
        lines += [
            "## Test training (issue 5)",
            "",
            "Steps per second of the trainer (`engine.training.Trainer.run`) against a plain "
            "hand-written PyTorch loop on the same model, data, batch size, optimizer and "
            "device, measured with `benchmarks/bench_training.py`. Target: **>= 0.95x**.",
            "",
            "Runs are interleaved (who goes first alternates) after one warm-up each. Three "
            "ratios of the trainer's steps per second to the plain loop's: *paired*, the "
            "median over pairs of neighbouring runs (both sides of a pair saw the same load "
            "from other processes); *best*, the fastest run of each side (other processes "
            "can only slow a run down); *CPU*, the fewest CPU seconds of the calling thread "
            "(with one torch thread all the work is in it), the trainer's setup and report "
            "included. The machine was shared with other jobs while measuring (load average "
            "in each heading), which is what the paired and best-of figures guard against.",
            "",
        ]
    threads = torch.get_num_threads()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines += [
        f"### {device_name}, {threads} torch thread{'s' if threads != 1 else ''}, "
        f"{args.precision}",
        "",
        f"torch {torch.__version__}; {args.repeats} runs per side; load average at the end "
        f"{load} on {os.cpu_count()} cores.",
        "",
        "| workload | steps | plain loop (steps/s, median) | trainer loop (steps/s, median) "
        "| ratio, paired | **ratio, best** | ratio, CPU | trainer incl. setup and report "
        "(steps/s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cpu = f"{row['cpu']:.3f}x" if row["cpu"] is not None else "–"
        lines.append(
            f"| {row['name']} | {row['steps']} | {row['plain']:.1f} | {row['trainer']:.1f} | "
            f"{row['paired']:.3f}x | **{row['best']:.3f}x** | {cpu} | "
            f"{row['trainer_total']:.1f} |")
    lines += [
        "",
        "\"Incl. setup and report\" adds, once per run: reading the data, one probe forward, "
        "the snapshot of the trainable tensors for Discard, digests of the frozen ones "
        f"before and after, and the report (median: {setups}).",
        "",
    ]
    if not torch.cuda.is_available():
        lines += [
            "No GPU was available for this measurement, so the CUDA (bf16) figures are not "
            "here; on a machine with one: `python benchmarks/bench_training.py --device cuda "
            "--precision bf16 --append`.",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--fragment", default="training", help="docs/benchmarks/NAME.md")
    parser.add_argument("--only", type=int, help="run only workload number N (0-based)")
    parser.add_argument("--append", action="store_true",
                        help="add this configuration's section to the existing fragment")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        device_name = f"{torch.cuda.get_device_name(0)} (CUDA)"
    else:
        device_name = f"CPU ({platform.machine()})"
    rows = []
    chosen = workloads(args.device, args.precision)
    if args.only is not None:
        chosen = [chosen[args.only]]
    for workload in chosen:
        row = measure(workload, args.repeats)
        print(f"{row['name']}: plain {row['plain']:.1f} steps/s, trainer {row['trainer']:.1f} "
              f"(paired {row['paired']:.3f}x, best {row['best']:.3f}x, cpu {row['cpu']})",
              file=sys.stderr)
        rows.append(row)
    text = fragment(rows, args, device_name)
    if args.append:
        existing = FRAGMENTS / f"{args.fragment}.md"
        if existing.exists():
            text = existing.read_text().rstrip("\n") + "\n\n" + text
    write_fragment(args.fragment, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
