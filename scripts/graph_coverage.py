"""Build the graph of every torchvision classification model; print one line per model.

    .venv/bin/python scripts/graph_coverage.py [--method auto] [NAME ...]

Each model is built on the meta device (no weights, no memory) and traced as the
`graph` command does. The last line is the count; failures are listed with their
one-line reason. The figures are recorded in docs/graph.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torchvision

from engine.arch import build_model
from engine.graph import build_graph
from engine.graph.groups import GroupTree
from engine.graph.layout import GraphLayout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="default: every classification model")
    parser.add_argument("--method", default="auto")
    args = parser.parse_args()
    names = args.names or sorted(torchvision.models.list_models(module=torchvision.models))
    failures = []
    methods: dict[str, int] = {}
    for name in names:
        start = time.perf_counter()
        try:
            model = build_model(f"torchvision:{name}", meta=True)
            graph = build_graph(model, method=args.method)
            tree = GroupTree(graph)
            GraphLayout(tree).arrange(tree.initial_expanded())
        except Exception as error:  # every failure is reported, none stops the sweep
            line = str(error).splitlines()[0] if str(error) else type(error).__name__
            failures.append((name, line))
            print(f"FAIL {name}: {line}", flush=True)
            continue
        methods[graph.method] = methods.get(graph.method, 0) + 1
        print(f"ok   {name}: {len(graph)} nodes by {graph.method} ({graph.example}), "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    built = len(names) - len(failures)
    by = ", ".join(f"{count} by {method}" for method, count in sorted(methods.items()))
    print(f"{built} of {len(names)} models graph ({by}); {len(failures)} failed")
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
