"""`apply`: replay a recipe on a model or checkpoint headlessly and write the result."""

from __future__ import annotations

import argparse

from engine.recipe import read_recipe, replay

from ..documents import add_document_arguments, add_memory_argument, open_document, progress_bar
from .convert import add_save_arguments, report_saved, save_options


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("apply", help="apply a recipe and write the edited weights")
    parser.add_argument("recipe", help="recipe file (JSON)")
    parser.add_argument("--input", metavar="PATH",
                        help="checkpoint file or folder to edit (with --arch: in model mode)")
    add_document_arguments(parser)
    add_memory_argument(parser)
    parser.add_argument("--output", required=True, metavar="PATH",
                        help="where to write: .safetensors, .safetensors.index.json, .pt/.pth, "
                        "or a folder")
    add_save_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    edits = read_recipe(args.recipe)
    session = open_document(args, path=args.input)
    replay(session, edits, trust=args.trust)
    with progress_bar(args) as bar:
        result = session.save(args.output, progress=bar, **save_options(args))
    print(f"applied {len(edits)} edit(s)")
    report_saved(result)
    return 0
