"""Merge the benchmark fragments in docs/benchmarks/*.md into docs/benchmarks.md.

Each benchmark script writes its own fragment (so that one script can be re-run alone);
this puts them together in a fixed order under one header.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["engine", "core", "files", "gui", "gui-startup", "plots", "training", "export",
         "graph", "merge"]

HEADER = """# Benchmarks

Figures measured on this project's development machine (2 CPU cores, 24 GiB, no GPU; a
shared machine, so every figure is a ratio against a baseline measured in the same run, or
an absolute figure with its target). Each section names the script that produced it; run
`python scripts/collect_benchmarks.py` after a benchmark script to refresh this page.

"""


def main() -> None:
    fragments = sorted((ROOT / "docs" / "benchmarks").glob("*.md"),
                       key=lambda path: (ORDER.index(path.stem) if path.stem in ORDER else 99,
                                         path.stem))
    parts = [HEADER] + [path.read_text().strip() + "\n" for path in fragments]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(parts))
    print(f"docs/benchmarks.md: {len(fragments)} section(s)")


if __name__ == "__main__":
    main()
