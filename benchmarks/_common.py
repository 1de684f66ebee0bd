"""Helpers shared by the benchmark scripts: process timing, peak memory, Markdown output."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAGMENTS = ROOT / "docs" / "benchmarks"


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def time_command(command: list[str], repeats: int) -> list[float]:
    """Wall-clock seconds of a whole process, `repeats` times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


def interleaved(commands: dict[str, list[str]], repeats: int) -> dict[str, list[float]]:
    """Time several commands in turn (A, B, A, B, ...) so machine noise hits both alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            times[name] += time_command(command, 1)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_fragment(name: str, text: str) -> Path:
    """Write docs/benchmarks/<name>.md and echo it."""
    FRAGMENTS.mkdir(parents=True, exist_ok=True)
    path = FRAGMENTS / f"{name}.md"
    path.write_text(text)
    print(text)
    return path


def python() -> str:
    return sys.executable
