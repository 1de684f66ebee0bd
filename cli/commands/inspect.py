"""`inspect`: list every tensor with shape, dtype, trainability and tie group, plus totals."""

from __future__ import annotations

import argparse

from engine.listing import listing

from ..documents import add_document_arguments, open_document
from ..json_output import print_json


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
    result = listing(session)
    if args.json:
        print_json(result)
        return 0
    print(format_listing(result))
    return 0


def format_listing(result: dict) -> str:
    """A table: name, shape, dtype, trainable, tie group; then the totals."""
    rows = [("name", "shape", "dtype", "trainable", "tie")]
    for tensor in result["tensors"]:
        trainable = {True: "yes", False: "no", None: "-"}[tensor["requires_grad"]]
        if tensor["kind"] == "buffer":
            trainable = "buffer"
        tie = "" if tensor["tie_group"] is None else f"#{tensor['tie_group']}"
        rows.append((tensor["name"], "x".join(map(str, tensor["shape"])) or "scalar",
                     tensor["dtype"], trainable, tie))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
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
    return "\n".join(lines)
