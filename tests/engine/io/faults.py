"""Fault injection for saves: fail, or "kill", the N-th rename, link or removal of a save.

`Faults` replaces the `os` functions that change a folder's entries (`replace`, `rename`,
`link`, `unlink`, `remove`, `rmdir`; `pathlib` and `shutil` go through them) for the
duration of a `with` block and counts their calls. At call `fail_at` it either raises
`OSError(EIO)` (a failing disk: the save must report it and leave the old set) or
simulates a kill: that call and every later one raise `SimulatedKill`, so no cleanup
reaches the disk, as after SIGKILL. The counting pass (`fail_at=None`) tells how many
such calls a save makes, so a test can try every one of them in turn.
"""

from __future__ import annotations

import errno
import os
from typing import Any

OPERATIONS = ("replace", "rename", "link", "unlink", "remove", "rmdir")


class SimulatedKill(BaseException):
    """The process "died" at an injected call (nothing after it reaches the disk)."""


class Faults:
    """Count, and fail or kill at, the folder-changing calls made inside the block."""

    def __init__(self, fail_at: int | None = None, kill: bool = False) -> None:
        self.fail_at = fail_at
        self.kill = kill
        self.calls: list[tuple[str, str]] = []
        self.dead = False
        self._real: dict[str, Any] = {}

    def __enter__(self) -> Faults:
        for name in OPERATIONS:
            self._real[name] = getattr(os, name)
            setattr(os, name, self._wrap(name, self._real[name]))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, real in self._real.items():
            setattr(os, name, real)

    def _wrap(self, name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.dead:
                raise SimulatedKill(f"{name} after the kill")
            self.calls.append((name, os.fspath(args[0]) if args else ""))
            if len(self.calls) == self.fail_at:
                if self.kill:
                    self.dead = True
                    raise SimulatedKill(f"killed at {name} #{self.fail_at}")
                raise OSError(errno.EIO, "Input/output error (injected)")
            return real(*args, **kwargs)

        return call
