"""`inspect`: list every tensor with shape, dtype, trainability and tie group, plus totals."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Iterator

from engine.listing import listing, listing_json

from ..documents import add_document_arguments, open_document
from ..json_output import print_json_pieces


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("inspect", help="list the tensors of a model or checkpoint")
    parser.add_argument("path", nargs="?", metavar="PATH",
                        help="checkpoint file or folder (.safetensors, .pt/.pth/.bin/.ckpt, "
                        "index.json, Hugging Face folder)")
    add_document_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON (see docs/inspect.md)")
    return parser


def run(args: argparse.Namespace) -> int:
    # Without weights, only shapes are needed: build on the meta device (no memory, no init).
    session = open_document(args, meta=True, path=args.path)
    if args.json:
        print_json_pieces(listing_json(session))
        return 0
    for line in listing_lines(listing(session, lazy=True)):
        sys.stdout.write(line + "\n")
    return 0


def format_listing(result: dict) -> str:
    """A table: name, shape, dtype, trainable, tie group; then the totals."""
    return "\n".join(listing_lines(result))


def listing_lines(result: dict) -> Iterator[str]:
    """The lines of `format_listing`, one at a time (`result["tensors"]` may be an
    iterable that gives the entries anew on each pass: it is read twice, for the widths,
    then for the lines, so a million rows are never held as text)."""
    header = ("name", "shape", "dtype", "trainable", "tie")
    widths = [len(cell) for cell in header]
    for cells in _cells(result["tensors"]):
        widths = [max(width, len(cell)) for width, cell in zip(widths, cells, strict=True)]
    for cells in itertools.chain([header], _cells(result["tensors"])):
        yield "  ".join(cell.ljust(width) for cell, width in zip(cells, widths,
                                                                  strict=True)).rstrip()
    yield from _footer(result)


def _cells(tensors: Iterable[dict]) -> Iterator[tuple[str, ...]]:
    for tensor in tensors:
        trainable = {True: "yes", False: "no", None: "-"}[tensor["requires_grad"]]
        if tensor["kind"] == "buffer":
            trainable = "buffer"
        tie = "" if tensor["tie_group"] is None else f"#{tensor['tie_group']}"
        yield (tensor["name"], "x".join(map(str, tensor["shape"])) or "scalar",
               tensor["dtype"], trainable, tie)


def _footer(result: dict) -> list[str]:
    lines: list[str] = []
    totals = result["totals"]
    lines.append("")
    lines.append(f"{totals['stored_tensors']} tensors stored ({totals['tensors']} names), "
                 f"{totals['parameters']:,} parameters, "
                 f"{totals['trainable_parameters']:,} trainable, "
                 f"{totals['bytes'] / 2**20:,.1f} MiB")
    for index, group in enumerate(result["tie_groups"]):
        lines.append(f"tie #{index}: {', '.join(group)}")
    for group in result.get("module_ties", []):
        lines.append(f"shared module: {', '.join(group)}")
    source = result.get("source") or {}
    if source.get("prefix") and not source.get("stripped_prefix"):
        lines.append(f"every name starts with '{source['prefix']}' (DataParallel/compile); "
                     "--strip-prefix removes it")
    if len(source.get("candidates") or []) > 1:
        lines.append(f"nested state dicts: {', '.join(source['candidates'])} (showing "
                     f"'{source.get('nested_key')}'; --choice KEY picks another)")
    return lines
