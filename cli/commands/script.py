"""`script`: replay a recipe and write it as a standalone PyTorch script."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.io.atomic import atomic_write_bytes
from engine.recipe import read_recipe, replay
from engine.script_export import export_script

from ..documents import add_document_arguments, open_document


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "script", help="write a recipe as a plain PyTorch script that reproduces it")
    parser.add_argument("recipe", help="recipe file (JSON)")
    parser.add_argument("--input", metavar="PATH", help="starting checkpoint (with --arch)")
    add_document_arguments(parser)
    parser.add_argument("--output", required=True, metavar="FILE.py", help="script to write")
    return parser


def run(args: argparse.Namespace) -> int:
    edits = read_recipe(args.recipe)
    # The edits are replayed so that the script can name exactly what each one selected.
    session = open_document(args, path=args.input)
    replay(session, edits)
    title = f"Edits of {Path(args.recipe).name}"
    atomic_write_bytes(args.output, export_script(session, title=title).encode("utf-8"))
    print(f"wrote {args.output} ({len(edits)} edit(s))")
    return 0
