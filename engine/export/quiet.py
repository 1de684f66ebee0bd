"""Keep the exporters' own chatter out of the user's terminal while they run.

torch.export, torch.onnx and torch.jit log graph dumps and hints to stderr through
`logging` when they fail, and warn (deprecations, tracer notes) when they work;
the export reports what matters in its own words. Warnings are recorded (the
tracer's notes become report notes); log records of the exporters' loggers are
dropped, and only those: other records pass; what torch.export prints straight to
`sys.stderr` on a failure (a partial graph) is captured and dropped.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

#: loggers whose records are dropped while an export runs (transformers warns about
#: tracing and config details on a model's first calls)
EXPORTER_LOGGERS = ("torch", "onnxscript", "onnx_ir", "onnx", "onnxruntime", "transformers")


class _DropExporterRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return not any(name == prefix or name.startswith(prefix + ".")
                       for prefix in EXPORTER_LOGGERS)


@contextlib.contextmanager
def quiet_exporters() -> Iterator[list[warnings.WarningMessage]]:
    """Record warnings and drop the exporters' log records while the block runs.

    Yields the list the warnings are recorded into. Python's warning filters and
    `sys.stderr` are process-wide, so a warning or a write to stderr of another thread
    meanwhile is caught too (and so not shown); exports are rare and short enough for
    that to be acceptable.
    """
    drop = _DropExporterRecords()
    handlers = _handlers()
    for handler in handlers:
        handler.addFilter(drop)
    try:
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("always")
            yield caught
    finally:
        for handler in handlers:
            handler.removeFilter(drop)


def _handlers() -> list[logging.Handler]:
    """Every handler an exporter's record can reach: its loggers', the root's, the last
    resort (which prints records of loggers that have no handler)."""
    found: list[logging.Handler] = []
    loggers: list[logging.Logger] = [logging.getLogger()]
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and any(
                name == prefix or name.startswith(prefix + ".") for prefix in EXPORTER_LOGGERS):
            loggers.append(logger)
    for logger in loggers:
        for handler in logger.handlers:
            if handler not in found:
                found.append(handler)
    if logging.lastResort is not None and logging.lastResort not in found:
        found.append(logging.lastResort)
    return found
