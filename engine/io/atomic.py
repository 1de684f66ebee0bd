"""Atomic file writes: a temporary file in the target folder, fsynced, then `os.replace`.

A failed or killed write leaves the old file as it was and no temporary file behind
(the temporary is removed on any error; a kill -9 can leave one, named so that it is
recognizable: `.<name>.weightsmith-tmp-<random>`).

Temporaries are created private (0600, by `mkstemp`); before one becomes final it gets
the mode the file would have had if written in place: the mode of the file it replaces,
or `0666 & ~umask` for a new file (`0777 & ~umask` for a new folder), so a file saved
on a shared machine stays readable by whoever could read the one before.
"""

from __future__ import annotations

import contextlib
import os
import stat
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
        os.chmod(temp, final_mode(path))
        fsync_file(temp)
        os.replace(temp, path)
        fsync_folder(folder)
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


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    `os.umask` can only be read by setting it, which races with threads creating files;
    Linux shows it in /proc/self/status.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def final_mode(path: str | Path, folder: bool = False) -> int:
    """The permission bits a file (or folder) written at `path` should get.

    The mode of what is there now when it is of the same kind (a file saved over another
    keeps its mode), else what `open`/`mkdir` would give: `0666 & ~umask` (`0777` for a
    folder).
    """
    try:
        info = os.lstat(path)
    except OSError:
        info = None
    if info is not None and (stat.S_ISDIR(info.st_mode) if folder
                             else stat.S_ISREG(info.st_mode)):
        return stat.S_IMODE(info.st_mode)
    return (0o777 if folder else 0o666) & ~current_umask()


def fsync_file(path: Path) -> None:
    """Flush a file's data to the disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (what renames and removals did) to the disk."""
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


class StagedFiles:
    """Write several files into one folder; none replaces its target until all are written.

    Each `stage(name)` gives a temporary path beside the final one. `commit()` fsyncs
    them all, then renames them into place in the order they were staged (put an index
    last, so that readers never see an index naming files that are not there yet).
    Leaving the `with` block by an error removes every temporary and changes nothing.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._staged: list[tuple[Path, Path]] = []
        self._committed = False

    def stage(self, name: str) -> Path:
        """A new empty temporary file that `commit()` will rename to `folder/name` (`name`
        may name a file in an existing subfolder: `1_Pooling/config.json`)."""
        final = self.folder / name
        handle, temp_name = tempfile.mkstemp(prefix=f".{final.name}{TEMP_MARK}",
                                             dir=final.parent)
        os.close(handle)
        self._staged.append((Path(temp_name), final))
        return Path(temp_name)

    def commit(self) -> list[Path]:
        """Make every staged file final; return the final paths."""
        from concurrent.futures import ThreadPoolExecutor

        # Several flushes in flight at once keep a (virtual) disk's queue busy.
        for temp, final in self._staged:
            os.chmod(temp, final_mode(final))
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(fsync_file, [temp for temp, _ in self._staged]))
        for temp, final in self._staged:
            os.replace(temp, final)
        for folder in {final.parent for _, final in self._staged} | {self.folder}:
            fsync_folder(folder)
        self._committed = True
        return [final for _, final in self._staged]

    def discard(self) -> None:
        """Remove the temporaries not yet committed."""
        if self._committed:
            return
        for temp, _ in self._staged:
            with contextlib.suppress(OSError):
                temp.unlink()
        self._staged.clear()

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is not None:
            self.discard()


@contextlib.contextmanager
def atomic_new_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it is renamed to `path`.

    `path` must not exist. On any error the temporary folder and what is in it are
    removed, so a failed save leaves nothing behind.
    """
    import shutil

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileError(path, f"folder {parent} does not exist")
    temp = Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_MARK}", dir=parent))
    try:
        yield temp
        for child in temp.iterdir():
            if child.is_file():
                fsync_file(child)
        os.chmod(temp, final_mode(path, folder=True))
        fsync_folder(temp)
        os.rename(temp, path)
        fsync_folder(parent)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
