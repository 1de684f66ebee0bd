"""Print a JSON document to standard output quickly and without extra copies."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

#: characters written per call: the text is encoded a piece at a time, never as a whole
PIECE = 2**20


def print_json(value: Any) -> None:
    """Write `value` as one line of JSON and a newline.

    `json.dumps` encodes in C (`json.dump` to a stream runs the pure-Python encoder,
    several times slower on a million-tensor listing); the text is then written in pieces
    so that no second copy of it is made for encoding.
    """
    text = json.dumps(value)
    for start in range(0, len(text), PIECE):
        sys.stdout.write(text[start:start + PIECE])
    sys.stdout.write("\n")


def print_json_pieces(pieces: Iterable[str]) -> None:
    """Write JSON text made in pieces (`engine.listing.listing_json`) and a newline."""
    for piece in pieces:
        sys.stdout.write(piece)
    sys.stdout.write("\n")
