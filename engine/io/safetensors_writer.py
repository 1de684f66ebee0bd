"""Write one .safetensors file, streaming: header, then each tensor's bytes.

Unchanged tensors are copied from the file they were opened from (in the kernel where
possible); a file whose header and tensors would be identical to its source is copied
whole, or not written at all when the target *is* that source.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import FileError
from .dtypes import TORCH_TO_SAFETENSORS, dtype_name
from .growth import dense_chunks
from .safetensors_header import MAX_HEADER_BYTES
from .sources import CHUNK, StoredFile, copy_range, write_all
from .stored_items import StoredItem

#: called with the number of bytes just written (for progress and cancelling)
Advance = Callable[[int], None]


def data_order(items: list[StoredItem]) -> list[StoredItem]:
    """Items in the order their bytes are written: document order when every tensor then
    starts at a multiple of its element size, otherwise largest elements first (as the
    safetensors library does), so every tensor can be mapped without copying."""
    position = 0
    for item in items:
        if position % item.dtype.itemsize:
            return sorted(items, key=lambda it: -it.dtype.itemsize)
        position += item.nbytes
    return list(items)


def header_bytes(items: list[StoredItem], metadata: dict[str, str] | None,
                 path: Path) -> bytes:
    """The 8-byte length and the JSON header, padded with spaces to a multiple of 8."""
    offsets: dict[str, tuple[int, int]] = {}
    position = 0
    for item in data_order(items):
        offsets[item.name] = (position, position + item.nbytes)
        position += item.nbytes
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = metadata
    for item in items:
        dtype = TORCH_TO_SAFETENSORS.get(item.dtype)
        if dtype is None:
            raise FileError(path, f"tensor '{item.name}' is {dtype_name(item.dtype)}, which "
                            "safetensors cannot store")
        header[item.name] = {"dtype": dtype, "shape": list(item.shape),
                             "data_offsets": list(offsets[item.name])}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_BYTES:
        raise FileError(path, f"the header would be {len(text):,} bytes, more than readers "
                        "accept; shard the file or shorten the metadata")
    return len(text).to_bytes(8, "little") + text


def whole_source(items: list[StoredItem], header: bytes) -> StoredFile | None:
    """The source file this output would equal byte for byte, if any."""
    sources = [item.source for item in items]
    if not items or any(source is None for source in sources):
        return None
    file = sources[0].file  # type: ignore[union-attr]
    if any(source.file is not file for source in sources):  # type: ignore[union-attr]
        return None
    if file.size != len(header) + sum(item.nbytes for item in items):
        return None
    ordered = data_order(items)
    position = len(header)
    for item in ordered:
        source = item.source
        if source is None or source.offset != position or source.key != item.name:
            return None
        position += item.nbytes
    if file.read(0, len(header)) != header:
        return None
    return file


def write_safetensors(target: Path, items: list[StoredItem], metadata: dict[str, str] | None,
                      advance: Advance) -> str:
    """Write `items` to the open temporary file at `target` (created by the caller).

    Returns
    -------
    'copied' when the whole source file was copied unchanged, 'written' otherwise.
    """
    header = header_bytes(items, metadata, target)
    source = whole_source(items, header)
    # The temporary is new and empty: no O_TRUNC, which would make ext4 flush the whole
    # file on close (its "replace by truncate" heuristic) before the fsync that follows.
    fd = os.open(target, os.O_WRONLY | getattr(os, "O_BINARY", 0))
    try:
        if source is not None:
            copy_in_chunks(source, 0, source.size, fd, advance)
            return "copied"
        write_all(fd, header)
        for item in data_order(items):
            stored = item.source
            if stored is not None:
                copy_in_chunks(stored.file, stored.offset, stored.nbytes, fd, advance)
            else:
                write_tensor(fd, item.raw(), advance)
        return "written"
    finally:
        os.close(fd)


def copy_in_chunks(file: StoredFile, offset: int, nbytes: int, fd: int,
                   advance: Advance) -> None:
    """Copy bytes of `file` to `fd` a chunk at a time, reporting each chunk."""
    done = 0
    while done < nbytes:
        count = min(CHUNK, nbytes - done)
        copy_range(file, offset + done, count, fd)
        done += count
        advance(count)


def write_tensor(fd: int, tensor: torch.Tensor, advance: Advance) -> None:
    """Write a CPU tensor's bytes in row-major order, a chunk at a time (a view that is not
    contiguous, such as a broadcast, is never made contiguous whole)."""
    for chunk in dense_chunks(tensor, CHUNK):
        write_all(fd, memoryview(chunk.numpy()))
        advance(chunk.numel())
