"""Arguments that name the document a command works on, and opening it."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from engine import arch
from engine.errors import ArchError
from engine.io.fill import report_notes, report_problems
from engine.opening import open_model
from engine.session import Session

from .progress_bar import TerminalProgress


def add_document_arguments(parser: argparse.ArgumentParser, *, weights: bool = True) -> None:
    """--arch SPEC, --arch-args JSON, [--weights FILE], and the options of opening a file."""
    parser.add_argument("--arch", metavar="SPEC",
                        help="torchvision:NAME, timm:NAME, path/to/file.py:ClassName, or hf "
                        "(the opened folder's config.json)")
    parser.add_argument("--arch-args", metavar="JSON", help="keyword arguments of the model, "
                        "e.g. '{\"num_classes\": 10}'")
    if weights:
        parser.add_argument("--weights", metavar="FILE",
                            help="starting weights for --arch (.pt/.pth/.safetensors)")
    parser.add_argument("--strict", action=argparse.BooleanOptionalAction, default=None,
                        help="with --arch: every tensor of the model must be in the file with "
                        "its shape, and every tensor of the file in the model (default); for "
                        "hf, after what transformers itself ignores. --no-strict opens anyway "
                        "and reports what did not fit")
    add_open_arguments(parser)


def add_open_arguments(parser: argparse.ArgumentParser) -> None:
    """--trust, --choice KEY, --strip-prefix, --quiet."""
    parser.add_argument("--trust", action="store_true",
                        help="allow code to run: files that run code when loaded (whole "
                        "pickled models, TorchScript), recipes that import code (attach with "
                        "a .py file, trust_remote_code), Hugging Face folders with their own "
                        "code; only for sources you trust")
    parser.add_argument("--choice", metavar="KEY",
                        help="which nested state dict of a checkpoint to use (default: the "
                        "first found, e.g. state_dict)")
    parser.add_argument("--strip-prefix", nargs="?", const=True, default=None, metavar="PREFIX",
                        help="strip the DataParallel/compile prefix ('module.', '_orig_mod.'), "
                        "or PREFIX")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_memory_argument(parser: argparse.ArgumentParser) -> None:
    """--max-edit-memory SIZE: what one edit of a recipe (or a training's data) may allocate."""
    parser.add_argument("--max-edit-memory", metavar="SIZE", type=parse_size,
                        help="the memory one edit may allocate from the numbers of its recipe "
                        "(a resize, a new layer, an expression, training data), e.g. 8G or "
                        "512M (default: the larger of 1 GiB and twice the model, at most the "
                        "memory available)")


#: suffixes of --max-edit-memory
SIZE_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """'8G' -> 8 * 2**30; refuse anything else in one line (argparse prints it)."""
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = cleaned.rstrip("KMGT"), cleaned[len(cleaned.rstrip("KMGT")):]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in SIZE_UNITS or not 0 < value < 2**60 or len(text) > 40:
        raise argparse.ArgumentTypeError(f"expected a size such as 8G or 512M, got {text!r}")
    return int(value * SIZE_UNITS[unit])


def parse_arch_args(text: str | None) -> dict[str, Any] | None:
    """The --arch-args JSON object, or None."""
    if text is None:
        return None
    try:
        return arch.parse_arch_args(text)
    except ValueError as error:
        raise ArchError(f"--arch-args: {error}") from None


@contextlib.contextmanager
def progress_bar(args: argparse.Namespace) -> Iterator[TerminalProgress]:
    """A progress bar on stderr (terminal only; none with --quiet), cleared at the end."""
    bar = TerminalProgress(quiet=bool(getattr(args, "quiet", False)))
    try:
        yield bar
    finally:
        bar.close()


def strict_of(args: argparse.Namespace) -> bool:
    """--strict/--no-strict; strict unless --no-strict was given."""
    return getattr(args, "strict", None) is not False


def open_path(args: argparse.Namespace, path: str, *, arch: bool = True) -> Session:
    """Open the file or folder `path` with the open options in `args`; notes about what
    the architecture's loading rules ignored go to stderr."""
    with progress_bar(args) as bar:
        session = Session.open(
            path,
            arch=getattr(args, "arch", None) if arch else None,
            arch_args=parse_arch_args(getattr(args, "arch_args", None)) if arch else None,
            trust=bool(getattr(args, "trust", False)),
            choice=getattr(args, "choice", None),
            strip_prefix=getattr(args, "strip_prefix", None),
            strict=strict_of(args),
            progress=bar,
        )
    report_load(session)
    for note in session.source.get("notes") or []:  # what the reader noticed (engine.io)
        sys.stderr.write(f"note: {note}\n")
    return session


def report_load(session: Session) -> None:
    """Print, on stderr, what opening with an architecture ignored or did not fit."""
    load_report = session.source.get("load_report")
    if not load_report:
        return
    for line in [*report_notes(load_report), *report_problems(load_report)]:
        sys.stderr.write(f"note: {line}\n")


def open_document(args: argparse.Namespace, *, meta: bool = False,
                  path: str | None = None) -> Session:
    """Open the document the arguments name: a file or folder `path` (with an optional
    --arch), or an architecture with optional --weights."""
    if path is not None:
        if getattr(args, "weights", None):
            raise ArchError("--weights: give the file as PATH (or --input), not both")
        return limited(args, open_path(args, path))
    if not args.arch:
        raise ArchError("--arch: required (e.g. --arch torchvision:resnet18), or give a file")
    session = open_model(args.arch, parse_arch_args(args.arch_args), args.weights, meta=meta,
                         strict=strict_of(args))
    report_load(session)
    return limited(args, session)


def limited(args: argparse.Namespace, session: Session) -> Session:
    """The session, held to --max-edit-memory when it was given."""
    limit = getattr(args, "max_edit_memory", None)
    if limit is not None:
        session.allocation_limit = limit
    return session
