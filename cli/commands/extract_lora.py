"""`extract-lora BASE TUNED --rank R --output FOLDER`: a PEFT LoRA adapter from a fine-tune.

Each selected weight's difference is factored by a truncated SVD (see
`engine.lora.extract`); the folder holds `adapter_config.json` and
`adapter_model.safetensors`, which `PeftModel.from_pretrained(base, FOLDER)` loads and the
`merge_lora` edit merges. The report gives each weight's relative error.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.lora.extract import error_text, extract, write_adapter

from ..documents import progress_bar


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "extract-lora", help="write a PEFT LoRA adapter folder from the difference of a "
        "fine-tune and its base (truncated SVD per weight)")
    parser.add_argument("base", metavar="BASE", help="the base model (file or folder)")
    parser.add_argument("tuned", metavar="TUNED", help="the fine-tuned model")
    parser.add_argument("--rank", "-r", type=int, required=True, metavar="R",
                        help="rank of every factor (lora r; lora_alpha is set to r)")
    parser.add_argument("--include", nargs="+", metavar="GLOB",
                        help="weights to extract (default: every Linear, Conv1D and "
                        "Embedding weight that differs)")
    parser.add_argument("--exclude", nargs="+", metavar="GLOB", help="weights to leave out")
    parser.add_argument("--output", "-o", required=True, metavar="FOLDER",
                        help="the adapter folder to write (new or empty)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    with progress_bar(args) as bar:
        extraction = extract(args.base, args.tuned, args.rank, args.include, args.exclude,
                             progress=bar)
    folder = write_adapter(args.output, extraction)
    if args.json:
        print(json.dumps({"output": str(folder), **extraction.report()}, indent=1))
        return 0
    width = max(len(weight.name) for weight in extraction.weights)
    print(f"{'weight':<{width}}  kind       shape          relative error")
    for weight in extraction.weights:
        shape = "x".join(map(str, weight.shape))
        print(f"{weight.name:<{width}}  {weight.kind:<9}  {shape:<13}  "
              f"{error_text(weight.relative_error)}")
    print(f"wrote {folder} (rank {extraction.rank}, {len(extraction.weights)} weights)")
    for name, why in extraction.skipped:
        sys.stderr.write(f"note: skipped {name}: {why}\n")
    for note in extraction.notes:
        sys.stderr.write(f"note: {note}\n")
    return 0
