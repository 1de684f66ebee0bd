"""Small files that used to cost unbounded memory or time (issue 8 §3), before and after.

Each case is a whole `python main.py ...` process, run by a baseline tree (another
checkout, e.g. the commit before the fix) and by this tree in turn, so machine noise hits
both alike. Reported: wall time, CPU time (user + system, the figure that noise on a
shared machine changes least) and peak resident memory, from `os.wait4`. A baseline run
that exceeds the time limit is stopped and reported as such.

Usage: python benchmarks/bench_limits.py --baseline PATH/TO/OLD/CHECKOUT [--repeats 1]
Writes docs/benchmarks/limits.md. The files are made by a child process: a parent that
had grown (torch imported, a million-entry header built) would pass its peak memory on
to every process it forks, and `ru_maxrss` would report that instead.
"""

from __future__ import annotations

import _codecs
import argparse
import json
import os
import signal
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from _common import ROOT, python, write_fragment

#: a baseline run past this many seconds is stopped
LIMIT_SECONDS = 150


class _Call:
    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return (self.function, self.args)


def _encode_chain(levels: int) -> _Call:
    value = _Call(_codecs.encode, "a" * 64, "latin1")
    for _ in range(levels):
        value = _Call(_codecs.encode, value, "hex_codec")
    return value


def _header_file(path: Path, count: int) -> None:
    header = {f"model.layers.{i}.weight": {"dtype": "F32", "shape": [1],
                                             "data_offsets": [4 * i, 4 * i + 4]}
              for i in range(count)}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        handle.write(b"\0" * (4 * count))


def cases(folder: Path) -> list[tuple[str, list[str], Path]]:
    """(label, main.py arguments, the file) for each case (see `make_files`)."""
    small, bytearrays, encoded = folder / "small.pt", folder / "bytearrays.pt", \
        folder / "encode_chain.pt"
    expanded = folder / "expanded.pt"
    header_100k, header_1m = folder / "100k.safetensors", folder / "1m.safetensors"
    return [
        ("inspect of a 2-tensor .pt (startup baseline)", ["inspect", str(small)], small),
        ("inspect of four `bytearray(10**9)` in a .pt", ["inspect", str(bytearrays)],
         bytearrays),
        ("inspect of 25 nested `_codecs.encode(..., 'hex')`", ["inspect", str(encoded)],
         encoded),
        ("diff of `zeros(1).expand(10**6, 10**6)` with itself",
         ["diff", str(expanded), str(expanded)], expanded),
        ("inspect --json of 100,000 tensors", ["inspect", "--json", str(header_100k)],
         header_100k),
        ("inspect --json of 1,000,000 tensors", ["inspect", "--json", str(header_1m)],
         header_1m),
        ("inspect (table) of 1,000,000 tensors", ["inspect", str(header_1m)], header_1m),
    ]


def make_files(folder: Path) -> None:
    """Write the files of `cases` (run in a child process)."""
    import torch

    small = folder / "small.pt"
    torch.save({"w": torch.zeros(2)}, small)
    bytearrays = folder / "bytearrays.pt"
    torch.save({"w": torch.zeros(2), **{f"junk{i}": _Call(bytearray, 10**9) for i in range(4)}},
               bytearrays)
    encoded = folder / "encode_chain.pt"
    torch.save({"w": torch.zeros(2), "junk": _encode_chain(25)}, encoded)
    expanded = folder / "expanded.pt"
    torch.save({"w": torch.zeros(1).expand(10**6, 10**6)}, expanded)
    _header_file(folder / "100k.safetensors", 100_000)
    _header_file(folder / "1m.safetensors", 1_000_000)


def run_once(tree: Path, arguments: list[str]) -> dict[str, float | bool | int]:
    """Wall seconds, CPU seconds, peak RSS in MiB and exit status of one process."""
    started = time.perf_counter()
    process = subprocess.Popen([python(), str(tree / "main.py"), *arguments, "--quiet"],
                               cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    stopped = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - started > LIMIT_SECONDS:
            os.killpg(process.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(process.pid, 0)
            stopped = True
            break
        time.sleep(0.05)
    return {"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss / 1024, "stopped": stopped,
            "status": os.waitstatus_to_exitcode(status)}


def _cell(runs: list[dict]) -> str:
    if any(run["stopped"] for run in runs):
        return f"stopped after {LIMIT_SECONDS} s"
    wall = statistics.median(run["wall"] for run in runs)
    cpu = statistics.median(run["cpu"] for run in runs)
    rss = statistics.median(run["rss"] for run in runs)
    return f"{wall:.1f} s ({cpu:.1f} s CPU), {rss:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, type=Path,
                        help="a checkout of the code before the fixes")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--make-files", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_files is not None:
        make_files(args.make_files)
        return
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([python(), __file__, "--baseline", ".", "--make-files", folder],
                       check=True, cwd=ROOT)
        rows = []
        for label, arguments, path in cases(Path(folder)):
            before: list[dict] = []
            after: list[dict] = []
            for _ in range(args.repeats):
                subprocess.run(["sync"], check=False)
                before.append(run_once(args.baseline.resolve(), arguments))
                subprocess.run(["sync"], check=False)
                after.append(run_once(ROOT, arguments))
            outcome = "refused in one line" if after[-1]["status"] == 2 else "answered"
            rows.append(f"| {label} | {path.stat().st_size:,} B | {_cell(before)} | "
                        f"{_cell(after)} | {outcome} |")
            print(rows[-1], flush=True)
    text = "\n".join([
        "## Small files, bounded cost (issue 8 §3)",
        "",
        f"Measured with `benchmarks/bench_limits.py` (median of {args.repeats}; baseline = "
        "the code before the fixes, run alternately with this tree on the same files; a "
        f"baseline run over {LIMIT_SECONDS} s is stopped). Time is wall (CPU in brackets: "
        "the machine is shared), memory is the peak resident set of the whole process.",
        "",
        "| case | file size | before | after | after, result |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "The 2-tensor row is the cost of starting Python and importing torch; see",
        "docs/files.md (\"Security model\") for the limits that refuse the bombs.",
        "",
    ])
    write_fragment("limits", text)


if __name__ == "__main__":
    main()
