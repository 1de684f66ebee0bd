"""`script`: replay a recipe and write it as a standalone PyTorch script."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.code_needs import recipe_code
from engine.errors import EditError
from engine.io.atomic import atomic_write_bytes
from engine.recipe import read_recipe, replay
from engine.script_export import export_script
from engine.training.config import OPTIMIZERS

from ..documents import add_document_arguments, open_document
from .train import as_option_error, parse_multipliers


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "script", help="write a recipe as a plain PyTorch script that reproduces it")
    parser.add_argument("recipe", help="recipe file (JSON)")
    parser.add_argument("--input", metavar="PATH", help="starting checkpoint (with --arch)")
    add_document_arguments(parser)
    parser.add_argument("--output", required=True, metavar="FILE.py", help="script to write")
    optimizer = parser.add_argument_group(
        "optimizer", "with any of these, the script gets make_optimizer(model): the test "
        "training's optimizer, one parameter group per learning-rate multiplier")
    optimizer.add_argument("--optimizer", choices=OPTIMIZERS, help="default adam")
    optimizer.add_argument("--lr", type=float, metavar="X", help="base learning rate "
                           "(default 1e-3)")
    optimizer.add_argument("--lr-mult", action="append", default=[], metavar="NAME=X",
                           help="learning-rate multiplier of a module or tensor (globs "
                           "allowed), e.g. --lr-mult fc=10; repeatable, later ones win")
    optimizer.add_argument("--momentum", type=float, metavar="X", help="SGD momentum")
    optimizer.add_argument("--weight-decay", type=float, metavar="X")
    return parser


def training_settings(args: argparse.Namespace) -> dict[str, Any] | None:
    """The optimizer settings given on the command line, or None when none were."""
    values: dict[str, Any] = {}
    for key in ("optimizer", "lr", "momentum", "weight_decay"):
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    if args.lr_mult:
        values["lr_multipliers"] = parse_multipliers(args.lr_mult)
    return values or None


def run(args: argparse.Namespace) -> int:
    edits = read_recipe(args.recipe)
    session = open_document(args, path=args.input)
    # Exporting never runs the recipe's own code (it would run it only to write it down):
    # a recipe that imports code is refused, even with --trust.
    code = recipe_code(edits, session)
    if code:
        raise EditError(f"script: {code[0]}: an export never runs a recipe's code (give the "
                        "architecture with --arch instead of attaching it in the recipe)")
    # The edits are replayed so that the script can name exactly what each one selected.
    replay(session, edits)
    title = f"Edits of {Path(args.recipe).name}"
    try:
        text = export_script(session, title=title, training=training_settings(args))
    except EditError as error:
        raise as_option_error(error) from None
    atomic_write_bytes(args.output, text.encode("utf-8"))
    print(f"wrote {args.output} ({len(edits)} edit(s))")
    return 0
