"""`diff A B`: tensors added, removed, renamed, reshaped, recast and changed between two files."""

from __future__ import annotations

import argparse

from engine.diff import diff_sessions

from ..documents import open_path, progress_bar
from ..json_output import print_json

#: exit status when the documents differ (like the diff tool); errors give 2
EXIT_DIFFERENT = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "diff", help="compare the tensors of two checkpoints (exit 0: same, 1: different)")
    parser.add_argument("a", metavar="A", help="first file or folder")
    parser.add_argument("b", metavar="B", help="second file or folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--trust", action="store_true",
                        help="allow files that run code when loaded (only if you trust them)")
    parser.add_argument("--strip-prefix", nargs="?", const=True, default=None,
                        metavar="PREFIX", help="strip 'module.'/'_orig_mod.' (or PREFIX) first")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    a = open_path(args, args.a, arch=False)
    b = open_path(args, args.b, arch=False)
    with progress_bar(args) as bar:
        result = diff_sessions(a, b, progress=bar, labels=(args.a, args.b))
    if args.json:
        print_json(result)
    else:
        print(format_diff(result))
    return 0 if result["identical"] else EXIT_DIFFERENT


def format_diff(result: dict) -> str:
    """Lines a person reads: one per difference, then a summary."""
    lines = []
    for name in result["removed"]:
        lines.append(f"- {name}")
    for name in result["added"]:
        lines.append(f"+ {name}")
    for pair in result["renamed"]:
        lines.append(f"R {pair['from']} -> {pair['to']}")
    for item in result["shape_changed"]:
        lines.append(f"S {item['name']}: {'x'.join(map(str, item['a_shape'])) or 'scalar'} "
                     f"-> {'x'.join(map(str, item['b_shape'])) or 'scalar'}")
    for item in result["dtype_changed"]:
        lines.append(f"T {item['name']}: {item['a_dtype']} -> {item['b_dtype']}"
                     f"{_values(item)}")
    for item in result["changed"]:
        lines.append(f"M {item['name']}:{_values(item)}")
    counts = {key: len(result[key]) for key in ("added", "removed", "renamed", "shape_changed",
                                                "dtype_changed", "changed")}
    if result["identical"]:
        lines.append(f"identical ({result['unchanged']} tensors)")
    else:
        lines.append(", ".join(f"{count} {key.replace('_', ' ')}" for key, count in
                               counts.items() if count) + f", {result['unchanged']} unchanged")
    return "\n".join(lines)


def _values(item: dict) -> str:
    if item.get("note") and item.get("changed_elements") is None:
        return f" {item['note']}"
    if not item.get("changed_elements"):
        return " values equal"
    largest = item["max_abs_diff"]
    text = "undefined (NaN/inf)" if largest is None else f"{largest:.6g}"
    of = f" of {item['numel']:,}" if "numel" in item else ""
    return f" {item['changed_elements']:,}{of} elements changed, max |diff| {text}"
