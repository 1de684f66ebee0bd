"""Streaming merge: `merge` (linear) of two sharded sets against reading them once.

Builds two sharded safetensors sets of `--size-gb` each (float32 matrices of
`--rows` x 4096), then, `--runs` times and alternating, measures `cat` of every input
file to /dev/null (the baseline: reading each input once), `python main.py merge` of a
linear config to a single .safetensors (wall time and the child's peak RSS), and the I/O
floor of any merge (the same `cat`, then `dd` of the output's size with fsync). Before each
timing the page cache is dropped when the system allows (`sync` and
/proc/sys/vm/drop_caches), so both read from the disk alike; it says whether it could.
The bound checked is peak RSS <= (inputs + 2) x the largest tensor + 300 MB, next to the
RSS of a bare `import torch, engine` (what any command costs before it reads a byte).

Writes docs/benchmarks/merge.md. The data (about 3 x size) is removed afterwards.
Usage: python benchmarks/bench_merge.py [--size-gb 4] [--runs 3] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, median, write_fragment

COLUMNS = 4096


def make_set(folder: Path, size_gb: float, rows: int, seed: int) -> list[Path]:
    """A sharded set (two shards) of float32 rows x 4096 matrices, about size_gb GB."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    per = rows * COLUMNS * 4
    count = max(2, int(size_gb * 1e9 // per))
    generator = torch.Generator().manual_seed(seed)
    names = [f"layers.{index}.weight" for index in range(count)]
    halves = [names[: count // 2], names[count // 2:]]
    weight_map = {}
    files = []
    for number, group in enumerate(halves, start=1):
        shard = f"model-{number:05d}-of-00002.safetensors"
        tensors = {name: torch.empty(rows, COLUMNS).uniform_(-1, 1, generator=generator)
                   for name in group}
        save_file(tensors, str(folder / shard), metadata={"format": "pt"})
        del tensors
        weight_map.update({name: shard for name in group})
        files.append(folder / shard)
    index = {"metadata": {"total_size": count * per}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return files


def drop_caches() -> bool:
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and the peak RSS (bytes) of the child, measured with wait4."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}: {process.stderr.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=4.0)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--folder", default=str(ROOT / "benchmarks" / "_data" / "merge"))
    parser.add_argument("--make", nargs=2, metavar=("FOLDER", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_set(Path(args.make[0]), args.size_gb, args.rows, int(args.make[1]))
        return 0
    folder = Path(args.folder)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        # The sets are made by a child: a child's peak RSS (wait4) starts at what its
        # parent held when it forked, so this process stays small.
        for name, seed in (("a", 1), ("b", 2)):
            subprocess.run([sys.executable, __file__, "--size-gb", str(args.size_gb), "--rows",
                            str(args.rows), "--make", str(folder / name), str(seed)],
                           check=True)
        inputs = [sorted((folder / name).glob("*.safetensors")) for name in ("a", "b")]
        config = folder / "linear.yml"
        config.write_text("merge_method: linear\nmodels:\n"
                          f"  - model: {folder / 'a'}\n    parameters: {{weight: 0.5}}\n"
                          f"  - model: {folder / 'b'}\n    parameters: {{weight: 0.5}}\n")
        out = folder / "merged.safetensors"
        files = [str(path) for group in inputs for path in group]
        total = sum(Path(path).stat().st_size for path in files)
        cat = ["sh", "-c", "cat " + " ".join(files) + " > /dev/null"]
        # The I/O floor of any merge: read every input once and write the output's size
        # (fsync'd, as the merge's save is).
        written = folder / "written.bin"
        blocks = max(1, round(total / 2 / 2**26))
        io_floor = ["sh", "-c", "cat " + " ".join(files) + " > /dev/null && dd if=/dev/zero "
                    f"of={written} bs=64M count={blocks} conv=fsync status=none"]
        merge = [sys.executable, "main.py", "merge", str(config), "--output", str(out), "--quiet"]
        bare = [sys.executable, "-c", "import torch, engine.merge.streaming, engine.session"]
        loads = [os.getloadavg()[0]]
        cats, merges, peaks, starts, floors = [], [], [], [], []
        dropped = True
        for run in range(args.runs):
            order = [("cat", cat), ("merge", merge), ("floor", io_floor)]
            if run % 2:
                order.reverse()
            for label, command in order:
                for stale in (out, written):
                    if stale.exists():
                        stale.unlink()
                dropped &= drop_caches()
                seconds, peak = timed(command)
                if label == "cat":
                    cats.append(seconds)
                elif label == "floor":
                    floors.append(seconds)
                else:
                    merges.append(seconds)
                    peaks.append(peak)
            # What any command costs before it reads a byte (interpreter, torch, engine).
            seconds, bare_rss = timed(bare)
            starts.append(seconds)
        largest = args.rows * COLUMNS * 4
        bound = 4 * largest + 300 * 10**6
        loads.append(os.getloadavg()[0])
        ratio = median(merges) / median(cats)
        working = max(median(merges) - median(starts), 0.0)
        text = f"""## Merging (issue 13): streaming (`benchmarks/bench_merge.py`)

`linear` of two sharded sets of {total / 2 / 1e9:.1f} GB each (float32 {args.rows} x {COLUMNS}
matrices, {largest / 2**20:.0f} MiB each; two shards per set) into one .safetensors, against
`cat` of every input file to /dev/null; {args.runs} runs, alternating, page cache dropped
before each timing: {"yes" if dropped else "no (not allowed here: both read from the cache)"};
{os.cpu_count()} cores, 1-minute load average {loads[0]:.1f} before and {loads[1]:.1f} after
(other work shares the machine).

| | median | runs |
| --- | --- | --- |
| cat inputs > /dev/null ({total / 1e9:.1f} GB) | {median(cats):.1f} s | {", ".join(f"{t:.1f}" for t in cats)} |
| python main.py merge linear.yml (reads {total / 1e9:.1f} GB, writes {total / 2e9:.1f} GB, fsync) | {median(merges):.1f} s | {", ".join(f"{t:.1f}" for t in merges)} |
| python -c "import torch, engine.merge.streaming, engine.session" (start-up) | {median(starts):.1f} s | {", ".join(f"{t:.1f}" for t in starts)} |
| cat inputs + dd of {blocks * 2**26 / 1e9:.1f} GB with fsync (the I/O floor of a merge) | {median(floors):.1f} s | {", ".join(f"{t:.1f}" for t in floors)} |
| **ratio** merge / cat | **{ratio:.2f}x** | target 1.5x |
| ratio (merge − start-up) / cat | {working / median(cats):.2f}x | |
| ratio merge / (cat + write the output) | {median(merges) / median(floors):.2f}x | |

Peak RSS of the merge: {max(peaks) / 1e6:.0f} MB; a bare `import torch, engine` (the CUDA
build of torch maps its libraries) is {bare_rss / 1e6:.0f} MB of it, so the merge itself held
{(max(peaks) - bare_rss) / 1e6:.0f} MB (bound: (2 inputs + 2) x {largest / 1e6:.0f} MB + 300 MB =
{bound / 1e6:.0f} MB).
"""
        write_fragment("merge", text)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
