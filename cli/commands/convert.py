"""`convert IN OUT`: any checkpoint format to any other (safetensors, sharded, .pt, folder)."""

from __future__ import annotations

import argparse
import sys

from engine.io.file_ties import describe_ties

from ..documents import add_open_arguments, open_path, progress_bar


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert", help="write a checkpoint in another format (.safetensors, sharded, .pt, "
        "Hugging Face folder)")
    parser.add_argument("input", metavar="IN", help="file or folder to read")
    parser.add_argument("output", metavar="OUT",
                        help="x.safetensors, x.safetensors.index.json (sharded), x.pt/.pth/.bin, "
                        "or a folder (an existing folder or a name without extension)")
    add_save_arguments(parser)
    parser.add_argument("--whole-model", action="store_true",
                        help="save the module itself (a trusted pickled model) as .pt")
    add_open_arguments(parser)
    return parser


def add_save_arguments(parser: argparse.ArgumentParser) -> None:
    """--max-shard-size, --format, --weights-format, --ties, --allow-large-output,
    --no-extras."""
    parser.add_argument("--max-shard-size", metavar="SIZE",
                        help="shard safetensors output at this size (e.g. 5GB, 500MB)")
    parser.add_argument("--format", choices=("safetensors", "pt", "folder"),
                        help="output format (default: from OUT)")
    parser.add_argument("--weights-format", choices=("safetensors", "pt"),
                        help="weights inside a folder output (default: as the input folder, "
                        "else safetensors)")
    parser.add_argument("--ties", choices=("every_name", "once", "hf"),
                        help="tied tensors: every_name (strict load_state_dict loads it), once "
                        "(safetensors load_model into a model that ties them), hf "
                        "(from_pretrained ties them again); default hf for a folder of a "
                        "model whose config ties them, else every_name")
    parser.add_argument("--allow-large-output", action="store_true",
                        help="write a file more than 64x (and 1 GiB) bigger than the stored "
                        "tensors (broadcast views stored dense); refused without it")
    parser.add_argument("--no-extras", action="store_true",
                        help=".pt output: write the bare state dict, without the checkpoint's "
                        "other entries (epoch, optimizer state)")


def save_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of `Session.save` from the save arguments."""
    options = {"format": args.format, "weights_format": args.weights_format,
               "include_extras": not args.no_extras, "ties": args.ties,
               "allow_large_output": args.allow_large_output}
    if args.max_shard_size is not None:
        size = args.max_shard_size
        options["max_shard_size"] = int(size) if size.isdigit() else size
    if getattr(args, "whole_model", False):
        options["whole_model"] = True
    return options


def run(args: argparse.Namespace) -> int:
    session = open_path(args, args.input, arch=False)
    with progress_bar(args) as bar:
        result = session.save(args.output, progress=bar, **save_options(args))
    report_saved(result)
    return 0


def report_saved(result: dict) -> None:
    """One line about what was written (the tensors the files hold), then any notes (on
    stderr)."""
    copied = f", {len(result['copied'])} unchanged file(s) copied" if result["copied"] else ""
    print(f"wrote {result['path']} ({result['tensors']} tensors, "
          f"{result['bytes'] / 2**20:,.1f} MiB{copied})")
    if result.get("ties"):
        print(f"ties: {describe_ties(result['ties'])}")
    for note in result["notes"]:
        sys.stderr.write(f"note: {note}\n")
