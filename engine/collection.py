"""Pause Python's cyclic garbage collector while building many small objects.

Parsing a header of a million tensors creates millions of dicts, lists and slots, none
of them in a reference cycle; each automatic collection meanwhile scans every object
made so far, which makes the parse take twice the time it needs (and, in a GUI worker,
holds the GIL long enough to freeze the window). Nothing made inside the block is lost:
objects are still freed by reference counting, and cycles are found by the next
collection after it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Disable automatic collection for the block (re-enabled after, if it was on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
