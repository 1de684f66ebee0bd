"""`export`: write the model for deployment (.pt2, ONNX, TorchScript), verified.

Exit status 0 when written and verified; 2 on any error (bad arguments, a model
that cannot be exported, a verification above the tolerance: one line on stderr,
nothing written at --output).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.errors import ExportError
from engine.export import FORMATS, export_model
from engine.export.options import TORCHSCRIPT_METHODS
from engine.recipe import read_recipe, replay

from ..documents import add_document_arguments, open_document, progress_bar
from .train import parse_shape


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export", help="export the model for deployment as .pt2, ONNX or TorchScript, "
        "verified against the live model",
        description="Export the model in eval mode as a torch.export ExportedProgram "
        "(.pt2), ONNX (torch.onnx.export(dynamo=True); needs the 'deploy' extra) or "
        "TorchScript, load the file back with its own runtime, and compare its outputs "
        "with the model's on fresh inputs. See docs/export.md.")
    parser.add_argument("path", nargs="?", metavar="PATH",
                        help="a checkpoint file or folder (with --arch for a state dict), "
                        "or leave out and give --arch")
    add_document_arguments(parser)
    parser.add_argument("--recipe", metavar="FILE", help="apply this recipe (JSON) first")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="pt2 (torch.export), onnx, or torchscript")
    parser.add_argument("--output", required=True, metavar="OUT",
                        help="the file to write, e.g. model.pt2, model.onnx, model.pt")
    parser.add_argument("--input-shape", metavar="SHAPE",
                        help="one sample's shape without the batch, e.g. 3,224,224 or 128 "
                        "(tokens); default: proposed from the model's first layer")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N",
                        help="batch of a static export (default 1)")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="make the batch dimension dynamic (verified at batch 1 and 3)")
    parser.add_argument("--opset", type=int, metavar="N",
                        help="ONNX opset (18 or newer; default: the exporter's)")
    parser.add_argument("--device", metavar="DEVICE",
                        help="export and verify on this device (cpu, cuda, cuda:N, mps); "
                        "default: where the model is")
    parser.add_argument("--tolerance", type=float, metavar="X",
                        help="largest accepted relative difference (default 1e-4 for "
                        "float32, 1e-2 for float16)")
    parser.add_argument("--method", choices=TORCHSCRIPT_METHODS, default="auto",
                        help="TorchScript: script, trace, or auto (script, else trace)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The export options the arguments give (validated by the engine)."""
    options: dict[str, Any] = {"batch_size": args.batch_size,
                               "dynamic_batch": args.dynamic_batch}
    shape = parse_shape(args.input_shape)
    if shape is not None:
        options["input_shape"] = shape
    for name in ("opset", "device", "tolerance"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.method != "auto":
        if args.format != "torchscript":
            raise ExportError("--method: only for --format torchscript")
        options["torchscript_method"] = args.method
    return options


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    session = open_document(args, path=args.path)
    if args.recipe:
        replay(session, read_recipe(args.recipe), trust=args.trust)
    with progress_bar(args) as bar:
        try:
            report = export_model(session, args.output, args.format, progress=bar, **options)
        except ExportError as error:
            raise ExportError(_as_option(str(error))) from None
    if args.json:
        json.dump(report.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(report.format_text())
    return 0


def _as_option(text: str) -> str:
    """'export.batch_size: ...' reads better on the command line as '--batch-size: ...'."""
    if text.startswith("export."):
        field, _, problem = text[len("export."):].partition(": ")
        option = "--" + field.replace("_", "-")
        option = {"--torchscript-method": "--method"}.get(option, option)
        return f"{option}: {problem}"
    return text
