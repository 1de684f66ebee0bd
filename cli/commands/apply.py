"""`apply`: replay a recipe on a model headlessly and write the result."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.recipe import read_recipe, replay
from engine.io.writers import save_state_dict

from ..documents import add_document_arguments, open_document


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("apply", help="apply a recipe and write the edited weights")
    parser.add_argument("recipe", help="recipe file (JSON)")
    add_document_arguments(parser)
    parser.add_argument("--output", required=True, metavar="FILE",
                        help="where to write: .safetensors or .pt/.pth")
    return parser


def run(args: argparse.Namespace) -> int:
    edits = read_recipe(args.recipe)
    session = open_document(args)
    replay(session, edits)
    save_state_dict(session, Path(args.output))
    print(f"applied {len(edits)} edit(s); wrote {args.output}")
    return 0
