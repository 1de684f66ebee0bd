"""Arguments that name the document a command works on, and opening it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.documents import model_session
from engine.errors import ArchError
from engine.session import Session


def add_document_arguments(parser: argparse.ArgumentParser) -> None:
    """--arch SPEC, --arch-args JSON, --weights FILE."""
    parser.add_argument("--arch", metavar="SPEC",
                        help="torchvision:NAME, timm:NAME or path/to/file.py:ClassName")
    parser.add_argument("--arch-args", metavar="JSON", help="keyword arguments of the model, "
                        "e.g. '{\"num_classes\": 10}'")
    parser.add_argument("--weights", metavar="FILE", help="starting weights (.pt/.pth/.safetensors)")


def parse_arch_args(text: str | None) -> dict[str, Any] | None:
    """The --arch-args JSON object, or None."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ArchError(f"--arch-args: not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise ArchError("--arch-args: expected a JSON object such as '{\"num_classes\": 10}'")
    return value


def open_document(args: argparse.Namespace, *, meta: bool = False) -> Session:
    """Open the document the arguments name (an architecture, with optional weights)."""
    if not args.arch:
        raise ArchError("--arch: required (e.g. --arch torchvision:resnet18)")
    return model_session(args.arch, parse_arch_args(args.arch_args), args.weights, meta=meta)
