"""One trace at a time in the process: torch.export, fx and the exporters share state.

torch.export, torch.compile and the ONNX exporter keep process-wide state while they
trace (the compiling flags of `torch.compiler`, fake-tensor modes, global configs).
Two traces in two threads interfere: an export in the deployment dialog failed with
an internal AssertionError while the Graph dock traced the same model. Every engine
function that traces a model takes this lock around the trace.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from .progress import Progress

_LOCK = threading.RLock()
#: how often a waiting trace checks for cancellation, in seconds
POLL = 0.1


@contextlib.contextmanager
def one_trace_at_a_time(progress: Progress | None = None) -> Iterator[None]:
    """Hold the process's trace lock for the block; while waiting for it, raise
    `Cancelled` as soon as `progress` is cancelled."""
    while not _LOCK.acquire(timeout=POLL):
        if progress is not None:
            progress.check()
    try:
        yield
    finally:
        _LOCK.release()
