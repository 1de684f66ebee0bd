"""Atomic file writes: a temporary file in the target folder, fsynced, then `os.replace`.

A failed or killed write leaves the old file as it was and no temporary file behind
(the temporary is removed on any error; a kill -9 can leave one, named so that it is
recognizable: `.<name>.weightsmith-tmp-<random>`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import FileError

TEMP_MARK = ".weightsmith-tmp-"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically.

    The caller writes the temporary file by any means (for example a library that
    takes a file name); this context manager fsyncs it, renames it over `path` and
    fsyncs the folder.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileError(path, f"folder {folder} does not exist")
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARK}", dir=folder)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        _fsync_file(temp)
        os.replace(temp, path)
        _fsync_folder(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file atomically with `write(file_object)`."""
    with atomic_path(path) as temp, open(temp, "wb") as handle:
        write(handle)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    atomic_write(path, lambda handle: handle.write(data))


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows).
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
