"""Where a stored tensor's bytes are: an open file, a byte range, a dtype and a shape.

A `StoredFile` keeps the file descriptor it was opened with for as long as any tensor
of the file may still be read. On POSIX systems that descriptor keeps the original
file alive even after a save replaces the path (`os.replace`), so tensors that were
never read still come from the bytes the user opened, and saving over the open file
is safe.

Tensors are read on first use: a large tensor as a view of a private, copy-on-write
memory map of the file (edits in memory never reach the file, and only the pages that
are touched are read), a small one by plain reads. One map per file, made on first use,
so a file with thousands of tensors costs one map and one file descriptor. Neither
path has a 2 GiB limit: reads go in chunks.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import FileError

#: tensors at least this big are memory-mapped instead of read
MAP_THRESHOLD = 4 * 2**20
#: bytes per read() or copy call: under Linux's 2 GiB per-call limit, small enough to cancel
CHUNK = 64 * 2**20


class StoredFile:
    """An open, read-only file that tensors are read from.

    Parameters
    ----------
    path : the file; opened at once, so later renames or replacements of the path do
        not change what is read
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as error:
            raise FileError(self.path, f"cannot be opened ({error.strerror or error})") from None
        stat = os.fstat(self.fd)
        self.size = stat.st_size
        #: identifies the bytes that were opened (device, inode, size, mtime)
        self.identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        #: the safetensors header's `__metadata__`, once read (a save that copies the whole
        #: file keeps it, its save id included)
        self.header_metadata: dict[str, str] | None = None
        self._lock = threading.Lock()
        self._mapping: mmap.mmap | None = None
        self._mapping_failed = False

    def __del__(self) -> None:
        fd = getattr(self, "fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
            self.fd = None

    def same_as_path(self, path: str | Path) -> bool:
        """Tell whether `path` is still the very file (same inode, size, mtime) opened here."""
        try:
            stat = os.lstat(path)  # a link to the file is not the file
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns) == self.identity

    def mapping(self) -> mmap.mmap | None:
        """A private, copy-on-write map of the whole file, or None when the system refuses.

        Writes through it change memory only, never the file.
        """
        with self._lock:
            if self._mapping is None and not self._mapping_failed and self.fd is not None:
                try:
                    self._mapping = mmap.mmap(self.fd, self.size, access=mmap.ACCESS_COPY)
                except (OSError, ValueError, OverflowError):
                    # Out of address space or commit charge: plain reads still work.
                    self._mapping_failed = True
            return self._mapping

    def read_into(self, buffer: memoryview, offset: int) -> None:
        """Fill `buffer` with the bytes at `offset`, in chunks; raise FileError if short."""
        done = 0
        total = len(buffer)
        while done < total:
            count = min(CHUNK, total - done)
            got = os.preadv(self.fd, [buffer[done:done + count]], offset + done)
            if got <= 0:
                raise FileError(self.path, f"ends early: wanted {total} bytes at {offset}")
            done += got

    def read(self, offset: int, nbytes: int) -> bytes:
        """The `nbytes` bytes at `offset` (for headers and small pieces)."""
        buffer = bytearray(nbytes)
        self.read_into(memoryview(buffer), offset)
        return bytes(buffer)


@dataclass(frozen=True, slots=True)
class TensorSource:
    """The bytes of one stored tensor: file, absolute offset, size, dtype and shape.

    `Slot.source` holds one of these for tensors read from a safetensors file, so a
    save can copy the bytes of a tensor that was never read (or a whole file) without
    decoding it.
    """

    file: StoredFile
    key: str
    offset: int
    nbytes: int
    dtype: torch.dtype
    shape: tuple[int, ...]

    def load(self) -> torch.Tensor:
        """Read the tensor: a writable, private tensor whose edits never reach the file."""
        return load_tensor(self)


@dataclass(frozen=True)
class ComputedSource:
    """A tensor made each time it is read and never kept (a streamed merge's output).

    A Slot with this source is never "loaded": a save writes it from what the read gives,
    and counts it as dense (it is made whole, never a broadcast view).
    """

    key: str


def load_tensor(source: TensorSource) -> torch.Tensor:
    """Read one tensor (see `TensorSource.load`)."""
    if source.nbytes == 0:
        return torch.empty(source.shape, dtype=source.dtype)
    size = source.dtype.itemsize
    if source.nbytes >= MAP_THRESHOLD and source.offset % size == 0:
        tensor = _mapped(source)
        if tensor is not None:
            return tensor
    flat = torch.empty(source.nbytes, dtype=torch.uint8)
    source.file.read_into(memoryview(flat.numpy()), source.offset)
    return flat.view(source.dtype).reshape(source.shape)


def _mapped(source: TensorSource) -> torch.Tensor | None:
    """A view of the file's copy-on-write map, or None when there is no map.

    Each TensorSource must be loaded once: two loads of one source would be two views of
    the same memory (a copy of a lazy Slot clones what it loads for that reason).
    """
    mapping = source.file.mapping()
    if mapping is None:
        return None
    numel = source.nbytes // source.dtype.itemsize
    flat = torch.frombuffer(mapping, dtype=source.dtype, count=numel, offset=source.offset)
    return flat.reshape(source.shape)


def copy_range(source: StoredFile, offset: int, nbytes: int, target_fd: int) -> None:
    """Append `nbytes` bytes of `source` at `offset` to the open file `target_fd`.

    Uses `os.copy_file_range` (in-kernel, no copy through user memory) where the
    system has it, and plain reads and writes otherwise.
    """
    done = 0
    copy_file_range = getattr(os, "copy_file_range", None)
    while done < nbytes and copy_file_range is not None:
        try:
            got = copy_file_range(source.fd, target_fd, min(CHUNK, nbytes - done),
                                  offset + done)
        except OSError:
            break  # not supported between these files: fall back to reads
        if got <= 0:
            break
        done += got
    buffer = bytearray(min(CHUNK, max(nbytes - done, 0)))
    view = memoryview(buffer)
    while done < nbytes:
        count = min(CHUNK, nbytes - done)
        source.read_into(view[:count], offset + done)
        _write_all(target_fd, view[:count])
        done += count


def _write_all(fd: int, data: memoryview) -> None:
    while len(data):
        written = os.write(fd, data)
        data = data[written:]


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of `data` to `fd` (os.write may write less than asked)."""
    _write_all(fd, memoryview(data).cast("B"))
