"""Files benchmarks (issue 3): a big sharded safetensors set and a single 3 GiB tensor.

1. Listing: `main.py inspect SET --json` (whole process) against a process that imports
   torch and lists names and shapes with `safe_open` alone; time and peak memory.
2. Edit one tensor and save to a new folder (`main.py apply`, whole process) against
   `cp -r` of the set (and `cp -r` + `sync`, since a save fsyncs); time and peak memory.
3. Edit one tensor and save over the opened set (in place): the atomic set commit.
4. One 3 GiB tensor: open, sampled statistics, edit one element, save, in one process.

With `--compare-tree DIR` (a checkout of an earlier version, e.g. `git archive REV | tar -x
-C DIR`), saves 2 and 3 are also timed with that version's `main.py`, interleaved, so a
change's cost is a ratio measured in the same run.

Run: .venv/bin/python benchmarks/bench_files.py [--size-gb 8] [--tensors 2000] [--repeats 3]
Data goes to benchmarks/_data/ (git-ignored) and is deleted afterwards unless --keep.
Writes docs/benchmarks/files.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_fragment  # noqa: E402
from benchmarks.files_data import make_big_tensor, make_sharded_set  # noqa: E402

DATA = ROOT / "benchmarks" / "_data"
GIB = 2**30
MIB = 2**20

LIST_BASELINE = """
import json, sys, torch
from safetensors import safe_open
folder = sys.argv[1]
index = json.load(open(folder + "/model.safetensors.index.json"))
rows = []
for shard in sorted(set(index["weight_map"].values())):
    with safe_open(folder + "/" + shard, framework="pt") as handle:
        for name in handle.keys():
            rows.append((name, handle.get_slice(name).get_shape()))
print(len(rows))
"""

BIG_TENSOR = """
import json, sys, time
t0 = time.perf_counter()
from engine.session import Session
t1 = time.perf_counter()
session = Session.open(sys.argv[1])
t2 = time.perf_counter()
tensor = session.document.tensor("big")
flat = tensor.reshape(-1)
step = max(flat.numel() // 1_000_000, 1)
sample = flat[::step].double()
stats = (float(sample.mean()), float(sample.std()), sample.histc(bins=64))
t3 = time.perf_counter()
session.apply({"op": "set", "target": "big", "index": "0, 5", "value": -1.0})
t4 = time.perf_counter()
result = session.save(sys.argv[2], mark_saved=False)
t5 = time.perf_counter()
check = Session.open(sys.argv[2]).document.tensor("big")
ok = check[0, 5].item() == -1.0 and check[-1, -1].item() == tensor[-1, -1].item()
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "stats": t3 - t2, "edit": t4 - t3,
                  "save": t5 - t4, "ok": ok, "samples": sample.numel()}))
"""


def measured(command: list[str]) -> tuple[float, int, str]:
    """Run `command` under a tiny Python wrapper that reports the child's own peak RSS."""
    wrapper = [sys.executable, "-c", (
        "import os, resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "elapsed = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "sys.stderr.buffer.write(p.stderr)\n"
        "print(json.dumps({'rc': p.returncode, 'elapsed': elapsed, 'peak': peak, "
        "'out': p.stdout.decode()[-2000:]}))\n"), *command]
    completed = subprocess.run(wrapper, capture_output=True, cwd=ROOT, check=True)
    result = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{command[:4]} failed: {completed.stderr.decode()[-800:]}")
    return result["elapsed"], result["peak"], result["out"]


def listing(folder: Path, repeats: int) -> dict[str, list[tuple[float, int]]]:
    commands = {
        "baseline": [sys.executable, "-c", LIST_BASELINE, str(folder)],
        "inspect": [sys.executable, "main.py", "inspect", str(folder), "--json", "--quiet"],
    }
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            elapsed, peak, _ = measured(command)
            results[name].append((elapsed, peak))
    return results


def edit_and_save(folder: Path, repeats: int, target: str,
                  before: Path | None = None) -> dict[str, list[tuple[float, int]]]:
    recipe = DATA / "edit_one.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "scale", "targets": [target], "value": 2.0}]}))
    out = DATA / "out"
    commands = {
        "torch import": [sys.executable, "-c", "import torch"],
        "cp -r": ["cp", "-r", str(folder), str(out)],
        "cp -r + sync": ["sh", "-c", f"cp -r '{folder}' '{out}' && sync"],
    }
    if before is not None:
        commands["apply (before)"] = [sys.executable, str(before / "main.py"), "apply",
                                      str(recipe), "--input", str(folder), "--output",
                                      str(out), "--quiet"]
    # apply last: its output is checked afterwards
    commands["apply"] = [sys.executable, "main.py", "apply", str(recipe), "--input",
                         str(folder), "--output", str(out), "--quiet"]
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(["sync"], check=True)
            elapsed, peak, _ = measured(command)
            results[name].append((elapsed, peak))
    verify = subprocess.run([sys.executable, "main.py", "diff", str(folder), str(out), "--json",
                             "--quiet"], capture_output=True, cwd=ROOT)
    report = json.loads(verify.stdout)
    if [item["name"] for item in report["changed"]] != [target] or report["added"] \
            or report["removed"]:
        raise RuntimeError(f"the saved set is not the input with one edit: {report}")
    shutil.rmtree(out, ignore_errors=True)
    return results


def save_in_place(folder: Path, repeats: int, target: str,
                  before: Path | None = None) -> dict[str, list[tuple[float, int]]]:
    """Edit one tensor and save over the opened set; `scale` by 1.0 reads and rewrites the
    tensor's shard while the set's contents stay the same from run to run."""
    recipe = DATA / "edit_in_place.json"
    recipe.write_text(json.dumps({"weightsmith_recipe": 1, "edits": [
        {"op": "scale", "targets": [target], "value": 1.0}]}))
    trees = {"apply in place": (ROOT, folder)}
    if before is not None:
        # Its own copy of the set: an earlier version may not write what this one checks
        # (it keeps index metadata it does not know, such as the shards' save ids).
        copy = DATA / "set-before"
        subprocess.run(["cp", "-r", str(folder), str(copy)], check=True)
        trees["apply in place (before)"] = (before, copy)
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in trees}
    for _ in range(repeats):
        for name, (tree, target) in trees.items():
            subprocess.run(["sync"], check=True)
            elapsed, peak, _ = measured([sys.executable, str(tree / "main.py"), "apply",
                                         str(recipe), "--input", str(target), "--output",
                                         str(target), "--quiet"])
            results[name].append((elapsed, peak))
    shutil.rmtree(DATA / "set-before", ignore_errors=True)
    return results


def big_tensor(path: Path) -> tuple[dict[str, float], int]:
    out = DATA / "big_out.safetensors"
    elapsed, peak, text = measured([sys.executable, "-c", BIG_TENSOR, str(path), str(out)])
    result = json.loads(text.strip().splitlines()[-1])
    result["total"] = elapsed
    out.unlink(missing_ok=True)
    return result, peak


def med(values: list[tuple[float, int]], index: int) -> float:
    return statistics.median(value[index] for value in values)


def spread(values: list[tuple[float, int]]) -> str:
    """'1.61 s (1.60-1.63)': median time with the range of the runs."""
    times = [value[0] for value in values]
    return f"{statistics.median(times):.2f} s ({min(times):.2f}-{max(times):.2f})"


LOAD_AT_START = os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=8.0)
    parser.add_argument("--tensors", type=int, default=2000)
    parser.add_argument("--shard-gb", type=float, default=1.0)
    parser.add_argument("--big-gib", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/_data")
    parser.add_argument("--skip-big-tensor", action="store_true")
    parser.add_argument("--compare-tree", type=Path, metavar="DIR",
                        help="an earlier checkout whose saves are timed alongside")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        folder, info = make_sharded_set(DATA / "set", args.size_gb, args.tensors, args.shard_gb)
        print(f"set ready in {time.perf_counter() - start:.0f} s: {info}", flush=True)
        listed = listing(folder, args.repeats)
        print("listing", listed, flush=True)
        saved = edit_and_save(folder, args.repeats, info["edit_target"], args.compare_tree)
        print("save", saved, flush=True)
        in_place = save_in_place(folder, args.repeats, info["edit_target"], args.compare_tree)
        print("in place", in_place, flush=True)
        shutil.rmtree(DATA / "set", ignore_errors=True)
        big = None
        if not args.skip_big_tensor:
            big_path = make_big_tensor(DATA / "big.safetensors", args.big_gib)
            big = big_tensor(big_path)
            print("big", big, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)
    write_fragment("files", fragment(args, info, listed, saved, in_place, big))


def fragment(args, info, listed, saved, in_place, big) -> str:
    import torch

    lines = [
        "## Files (issue 3)",
        "",
        f"Measured with `benchmarks/bench_files.py` on {platform.machine()}, {os.cpu_count()} "
        f"CPUs, torch {torch.__version__}, ext4 on a virtual disk; median of {args.repeats} "
        "interleaved runs; whole processes; peak memory is the child's maximum resident set "
        "(median).",
        "",
        f"Load average when the run started: {LOAD_AT_START:.1f} (the machine is shared; "
        "absolute times grow with it, ratios of runs interleaved in one run are what "
        "compare).",
        "",
        f"Synthetic set: {info['tensors']} float32 tensors, {info['bytes'] / GIB:.2f} GiB in "
        f"{info['shards']} shards with `model.safetensors.index.json`; largest tensor "
        f"{info['largest'] / MIB:.1f} MiB.",
        "",
        "### Full listing (`inspect --json`)",
        "",
        "| command | time | peak memory |",
        "| --- | --- | --- |",
    ]
    base_t, base_m = med(listed["baseline"], 0), med(listed["baseline"], 1)
    ours_t, ours_m = med(listed["inspect"], 0), med(listed["inspect"], 1)
    lines += [
        f"| import torch + `safe_open` names and shapes (baseline) | "
        f"{spread(listed['baseline'])} | {base_m / MIB:.0f} MiB |",
        f"| `python main.py inspect SET --json` | {spread(listed['inspect'])} | "
        f"{ours_m / MIB:.0f} MiB |",
        f"| **ratio / difference** | **{ours_t / base_t:.2f}x** (target <= 2x) | "
        f"**{(ours_m - base_m) / MIB:+.0f} MiB** (target <= +300 MiB) |",
        "",
        "### Edit one tensor and save to a new folder (`apply --input SET --output NEW`)",
        "",
        "| command | time | peak memory |",
        "| --- | --- | --- |",
    ]
    for name in ("cp -r", "cp -r + sync", "torch import", "apply (before)", "apply"):
        if name in saved:
            lines.append(f"| `{name}` | {spread(saved[name])} | "
                         f"{med(saved[name], 1) / MIB:.0f} MiB |")
    cp_t = med(saved["cp -r"], 0)
    sync_t = med(saved["cp -r + sync"], 0)
    apply_t, apply_m = med(saved["apply"], 0), med(saved["apply"], 1)
    torch_m = med(saved["torch import"], 1)
    lines += [
        f"| **ratio to `cp -r`** | **{apply_t / cp_t:.2f}x** (target <= 1.5x); "
        f"{apply_t / sync_t:.2f}x of `cp -r` + `sync` | apply - torch import = "
        f"**{(apply_m - torch_m) / MIB:+.0f} MiB** (target <= largest tensor + 300 MiB) |",
        "",
        "Shards that hold no edited tensor are copied byte for byte (in-kernel "
        "`copy_file_range`, four shards at a time), the shard with the edit gets a new header, its unchanged "
        "tensors copied and only the edited tensor written from memory. Every file is "
        "fsynced before it is renamed into place (atomic save), which `cp -r` does not do; "
        "`cp -r` + `sync` is the like-for-like comparison. Times are medians with the "
        "range of the runs in brackets; the virtual disk is shared and noisy.",
        "",
    ]
    if "apply (before)" in saved:
        lines += [f"`apply (before)` is the version in `{args.compare_tree.name}`, run "
                  "interleaved with this one: this version takes "
                  f"**{apply_t / med(saved['apply (before)'], 0):.2f}x** its time.", ""]
    lines += [
        "### Edit one tensor and save over the opened set (`apply --input SET --output SET`)",
        "",
        "| command | time | peak memory |",
        "| --- | --- | --- |",
    ]
    for name, values in in_place.items():
        lines.append(f"| `{name}` | {spread(values)} | {med(values, 1) / MIB:.0f} MiB |")
    if "apply in place (before)" in in_place:
        ratio = med(in_place["apply in place"], 0) / med(in_place["apply in place (before)"], 0)
        lines += ["", f"This version / the earlier one: **{ratio:.2f}x**. The edited shard is "
                  "rewritten (its other tensors copied in the kernel), the others are left as "
                  "they are; the atomic set commit adds, per rewritten shard, one rename to a "
                  "save-unique name, one hard link and one removal, and a second index."]
    lines.append("")
    if big is not None:
        result, peak = big
        lines += [
            f"### One {args.big_gib:g} GiB tensor (single .safetensors)",
            "",
            "| step | time |",
            "| --- | --- |",
            f"| open (header only) | {result['open']:.3f} s |",
            f"| sampled statistics ({result['samples']:,} values: mean, std, histogram) | "
            f"{result['stats']:.2f} s |",
            f"| `set` one element (undo keeps 4 bytes) | {result['edit']:.3f} s |",
            f"| save to a new file | {result['save']:.2f} s |",
            f"| whole process (import, all of the above, reopen and check) | "
            f"{result['total']:.2f} s |",
            "",
            f"Read back correct: {result['ok']}. Peak resident memory {peak / MIB:,.0f} MiB: "
            "the tensor is a copy-on-write memory map of the file, so its pages count as "
            "resident while they are read but are file-backed (only the edited page is "
            "private). No 2 GiB limit: reads, writes and copies go in 64 MiB chunks.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
