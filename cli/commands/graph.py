"""`graph`: the model's dataflow graph as JSON, DOT or SVG (see docs/graph.md)."""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import EditError
from engine.graph import METHODS, build_graph, check_input_shape
from engine.graph.groups import GroupTree
from engine.graph.serialize import expanded_to_depth, svg_of, to_dot, visible_json
from engine.io.atomic import atomic_write_bytes

from ..documents import add_document_arguments, open_document, progress_bar
from .train import parse_shape


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "graph", help="write the model's dataflow graph (JSON, DOT or SVG)",
        description="Trace the model (torch.export, then torch.fx, then a watched forward "
        "pass, on the meta device: no weight is read) and write its graph, grouped by "
        "module. See docs/graph.md.")
    parser.add_argument("path", nargs="?", metavar="PATH",
                        help="checkpoint file or folder (with --arch, or a Hugging Face folder)")
    add_document_arguments(parser)
    parser.add_argument("--depth", type=int, metavar="N",
                        help="show modules N levels down as closed boxes (1: the top-level "
                        "children); default: every op")
    parser.add_argument("--method", choices=("auto", *METHODS), default="auto",
                        help="how to trace (default auto: export, then fx, then hooks)")
    parser.add_argument("--input-shape", metavar="SHAPE",
                        help="one sample's shape, e.g. 3,224,224 (default: probed from the "
                        "model's first layer)")
    form = parser.add_mutually_exclusive_group(required=True)
    form.add_argument("--json", metavar="OUT", help="write JSON ('-' for standard output)")
    form.add_argument("--dot", metavar="OUT", help="write Graphviz DOT ('-' for standard output)")
    form.add_argument("--svg", metavar="OUT", help="write an SVG drawing ('-' for standard output)")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.depth is not None and args.depth < 1:
        raise EditError(f"--depth: expected 1 or more, got {args.depth}")
    shape = parse_shape(args.input_shape)
    if shape is not None:  # before the model is built: a typo fails at once
        shape = list(check_input_shape(shape, "--input-shape"))
    # Without weights only shapes are needed: build on the meta device.
    session = open_document(args, meta=True, path=args.path)
    try:
        session.document.check_model("graph")
    except EditError:
        raise EditError("graph: needs a model; give --arch for a checkpoint "
                        "(or open a Hugging Face folder with --arch hf)") from None
    with progress_bar(args) as bar:
        graph = build_graph(session.document.model, method=args.method, input_shape=shape,
                            progress=bar)
    tree = GroupTree(graph)
    expanded = expanded_to_depth(tree, args.depth)
    if args.json is not None:
        out, text = args.json, json.dumps(visible_json(tree, expanded)) + "\n"
    elif args.dot is not None:
        out, text = args.dot, to_dot(tree, expanded)
    else:
        out, text = args.svg, svg_of(tree, expanded)
    if out == "-":
        sys.stdout.write(text)
    else:
        atomic_write_bytes(out, text.encode("utf-8"))
    for note in graph.notes:
        sys.stderr.write(f"note: {note}\n")
    if out != "-" and not args.quiet:
        sys.stderr.write(f"wrote {out}: {len(graph)} nodes by {graph.method} "
                         f"({graph.example})\n")
    return 0
