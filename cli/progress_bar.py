"""A progress bar on stderr for long commands, shown only on a terminal and not with --quiet."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from engine.progress import Progress

WIDTH = 30


class TerminalProgress(Progress):
    """A `Progress` that draws `[#####-----]  45% text` on one line of stderr.

    Parameters
    ----------
    quiet : draw nothing (also when stderr is not a terminal)
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = not quiet and self._stream.isatty()
        self._last = 0.0
        self._drawn = False
        super().__init__(self._draw if self._enabled else None)

    def _draw(self, fraction: float, text: str) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and fraction < 1.0:
            return  # redraws faster than the eye are wasted terminal writes
        self._last = now
        filled = int(fraction * WIDTH)
        line = f"\r[{'#' * filled}{'-' * (WIDTH - filled)}] {fraction * 100:3.0f}% {text[:60]}"
        self._stream.write(line.ljust(WIDTH + 70))
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Clear the bar's line so that the command's own output starts on a clean line."""
        if self._drawn:
            self._stream.write("\r" + " " * (WIDTH + 70) + "\r")
            self._stream.flush()
            self._drawn = False
