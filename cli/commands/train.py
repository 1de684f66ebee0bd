"""`train`: test-train an edited model headlessly and print the verification report.

Exit status: 0 when every check passed, 1 when a check failed (the report says which),
2 on an error (bad arguments, unreadable data: one line on stderr, nothing written).
The first Ctrl-C stops the run at the next step and still reports (and writes
--output); a second one interrupts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import EditError
from engine.progress import Progress
from engine.recipe import read_recipe, replay
from engine.training import TrainConfig, Trainer
from engine.training.config import OPTIMIZERS, PRECISIONS, TASKS

from ..documents import add_document_arguments, add_memory_argument, open_document, progress_bar

EXIT_CHECK_FAILED = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="test-train a model for a while and verify what the training did",
        description="Train the model for a few steps and report: loss first/last, accuracy, "
        "the tensors that changed, whether frozen tensors are bit-identical and tied ones "
        "still tied, and which BatchNorm statistics moved. See docs/training.md.")
    add_document_arguments(parser)
    add_memory_argument(parser)
    # cli/documents.py may come to add --input for every command; add it only if not.
    if "--input" not in parser._option_string_actions:
        parser.add_argument("--input", metavar="PATH", help="a checkpoint file or folder to "
                            "open (with --arch for a model; instead of --weights)")
    parser.add_argument("--recipe", metavar="FILE",
                        help="apply this recipe (JSON) before training, e.g. freeze + new head")
    parser.add_argument("--data", required=True, metavar="SOURCE",
                        help="synthetic, demo, an image folder (root/CLASS/IMAGE), or a "
                        ".pt/.safetensors/.npz file with inputs and targets (or x and y)")
    parser.add_argument("--task", choices=TASKS,
                        help="default: classification for class labels, else regression")
    count = parser.add_mutually_exclusive_group()
    count.add_argument("--steps", type=int, metavar="N", help="optimizer steps (default 100)")
    count.add_argument("--epochs", type=int, metavar="N", help="passes over the data")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    parser.add_argument("--lr", type=float, default=1e-3, metavar="X", help="learning rate")
    parser.add_argument("--lr-mult", action="append", default=[], metavar="NAME=X",
                        help="learning-rate multiplier of a module or tensor (globs allowed), "
                        "e.g. --lr-mult fc=10; repeatable, later ones win")
    parser.add_argument("--momentum", type=float, default=0.9, metavar="X", help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, default=0.0, metavar="X")
    parser.add_argument("--seed", type=int, metavar="N", help="default: a random seed, reported")
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="mixed precision: bf16 (CUDA or CPU), fp16 (CUDA)")
    parser.add_argument("--input-shape", metavar="SHAPE",
                        help="one sample's shape for synthetic data, e.g. 3,64,64 "
                        "(default: proposed from the model)")
    parser.add_argument("--num-classes", type=int, metavar="N",
                        help="classes of synthetic targets (default: the model's outputs)")
    parser.add_argument("--image-size", type=int, metavar="N",
                        help="side images of a folder are resized to (default: proposed)")
    parser.add_argument("--output", metavar="FILE",
                        help="write the trained weights here (.safetensors, .pt/.pth)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the arguments describe; EditError names the option at fault."""
    values: dict[str, Any] = {
        "data": args.data, "task": args.task, "optimizer": args.optimizer, "lr": args.lr,
        "lr_multipliers": parse_multipliers(args.lr_mult), "momentum": args.momentum,
        "weight_decay": args.weight_decay, "batch_size": args.batch_size, "seed": args.seed,
        "device": args.device, "precision": args.precision,
        "input_shape": parse_shape(args.input_shape), "num_classes": args.num_classes,
        "image_size": args.image_size,
    }
    if args.epochs is not None:
        values["epochs"] = args.epochs
        values["steps"] = None
    elif args.steps is not None:
        values["steps"] = args.steps
    try:
        return TrainConfig.from_dict(values, prefix="train")
    except EditError as error:
        raise as_option_error(error) from None


def as_option_error(error: EditError) -> EditError:
    """"train.batch_size: ..." as it reads on the command line: "--batch-size: ..."."""
    text = str(error)
    if not text.startswith("train."):
        return error
    field, _, problem = text[len("train."):].partition(": ")
    option = "--" + field.split(".")[0].replace("_", "-")
    option = {"--lr-multipliers": "--lr-mult"}.get(option, option)
    return EditError(f"{option}: {problem}")


def parse_multipliers(items: list[str]) -> dict[str, float]:
    """`["fc=10", "layer4=2"]` -> `{"fc": 10.0, "layer4": 2.0}`."""
    multipliers: dict[str, float] = {}
    for item in items:
        name, equals, value = item.rpartition("=")
        if not equals or not name:
            raise EditError(f"--lr-mult: expected NAME=X, e.g. fc=10; got '{item}'")
        try:
            multipliers[name] = float(value)
        except ValueError:
            raise EditError(f"--lr-mult: '{value}' in '{item}' is not a number") from None
    return multipliers


def parse_shape(text: str | None) -> list[int] | None:
    """`"3,64,64"` (or `3x64x64`) -> `[3, 64, 64]`."""
    if text is None:
        return None
    parts = text.replace("x", ",").replace(" ", "").strip("[]()").split(",")
    try:
        shape = [int(part) for part in parts if part]
    except ValueError:
        raise EditError(f"--input-shape: expected sizes such as 3,64,64; got '{text}'") from None
    if not shape or any(size <= 0 for size in shape):
        raise EditError(f"--input-shape: expected positive sizes such as 3,64,64; got '{text}'")
    return shape


@contextlib.contextmanager
def ctrl_c_stops(progress: Progress) -> Iterator[None]:
    """While the block runs, the first Ctrl-C stops the run cleanly; the next interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: object) -> None:
        progress.cancel()
        signal.signal(signal.SIGINT, previous)
        sys.stderr.write("\nstopping after this step (Ctrl-C again to interrupt)\n")

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    session = open_document(args, path=getattr(args, "input", None))
    if args.recipe:
        replay(session, read_recipe(args.recipe), trust=args.trust)
    output = Path(args.output).expanduser() if args.output else None
    if output is not None and not output.parent.is_dir():
        # Checked before training, so a long run is not wasted on a bad path.
        raise EditError(f"--output: folder {output.parent} does not exist")
    with progress_bar(args) as bar, ctrl_c_stops(bar):
        result = Trainer(session, config).run(progress=bar)
    report = result.report
    result.keep()
    if output is not None:
        session.save(output)
    if args.json:
        document = report.to_dict()
        document["output"] = str(output) if output is not None else None
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(report.format_text())
        if output is not None:
            print(f"wrote {output}")
    return 0 if report.passed else EXIT_CHECK_FAILED
