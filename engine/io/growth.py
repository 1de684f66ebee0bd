"""No small document silently becomes a huge file.

A stride-0 view (`torch.zeros(1).expand(10**6, 10**6)`) stores 4 bytes but reads as 4 TB;
`torch.save` keeps it small, while safetensors can only hold it dense. A save that would
write more than `GROWTH_FACTOR` times, and more than `GROWTH_BYTES` more than, the bytes
the document's tensors occupy needs confirmation (`allow_large_output=True`,
`--allow-large-output`, a question in the GUI); with it, the tensor is written a chunk at
a time (memory stays bounded) after checking the disk has room.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import FileError
from .sources import ComputedSource
from .stored_items import StoredItem

GROWTH_FACTOR = 64
GROWTH_BYTES = 2**30


@dataclass(frozen=True)
class Growth:
    """How much bigger the output is than what the document stores.

    Attributes
    ----------
    written : bytes the weights files would hold
    stored : bytes the document's tensors occupy (each storage once)
    name : the tensor that grows the most (a broadcast view)
    name_written : its bytes in the file
    name_stored : the bytes of its storage
    """

    written: int
    stored: int
    name: str
    name_written: int
    name_stored: int

    def message(self) -> str:
        """One line for a refusal or a question."""
        return (f"would write {size_text(self.written)} from {size_text(self.stored)} of stored "
                f"tensors: '{self.name}' is a broadcast view ({size_text(self.name_stored)} "
                f"stored, {size_text(self.name_written)} written)")


def size_text(count: int) -> str:
    """'1.6 KB', '4.0 TB' (powers of 1000, as disks are sold)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{count} B"


def _storage_bytes(item: StoredItem) -> tuple[object, int]:
    """(identity of the bytes behind `item`, how many there are)."""
    if item.source is not None:
        return ("file", id(item.source)), item.nbytes
    if isinstance(item.row.unread_source, ComputedSource):
        return ("computed", item.name), item.nbytes  # dense by construction; not made twice
    tensor = item.row.load()
    if tensor.device.type == "meta":
        return ("meta", id(tensor)), 0
    storage = tensor.untyped_storage()
    return ("storage", storage.data_ptr(), tensor.device), storage.nbytes()


def growth_of(items: list[StoredItem]) -> Growth | None:
    """The growth of writing `items` densely, when it is past the limits; else None."""
    written = sum(item.nbytes for item in items)
    if written <= GROWTH_BYTES:
        return None
    seen: dict[object, int] = {}
    worst: tuple[float, StoredItem, int] | None = None
    for item in items:
        key, count = _storage_bytes(item)
        seen[key] = count
        ratio = item.nbytes / max(count, 1)
        if worst is None or ratio > worst[0]:
            worst = (ratio, item, count)
    stored = sum(seen.values())
    if written <= GROWTH_FACTOR * stored or written - stored <= GROWTH_BYTES:
        return None
    assert worst is not None
    return Growth(written, stored, worst[1].name, worst[1].nbytes, worst[2])


def check_growth(items: list[StoredItem], path: Path, allow: bool) -> None:
    """Refuse a save that would grow past the limits unless allowed; an allowed one must
    fit on the disk.

    Raises
    ------
    FileError : naming the tensor and the sizes
    """
    growth = growth_of(items)
    if growth is None:
        return
    if not allow:
        raise FileError(path, f"{growth.message()}; confirm with allow_large_output=True "
                        "(--allow-large-output) to write it anyway")
    try:
        free = shutil.disk_usage(path.parent if not path.is_dir() else path).free
    except OSError:
        return
    if growth.written > free:
        raise FileError(path, f"{growth.message()}; only {size_text(free)} are free there")


def dense_chunks(tensor: torch.Tensor, max_bytes: int):
    """The bytes of `tensor` in row-major order, as contiguous uint8 tensors of at most
    about `max_bytes` each, without ever making the whole tensor contiguous."""
    if tensor.numel() == 0:
        return
    if tensor.is_contiguous():
        flat = tensor.reshape(-1).view(torch.uint8)
        for start in range(0, flat.numel(), max_bytes):
            yield flat[start:start + max_bytes]
        return
    if tensor.dim() <= 1:
        if tensor.dim() == 1 and tensor.numel() * tensor.element_size() > max_bytes:
            step = max(max_bytes // tensor.element_size(), 1)
            for start in range(0, tensor.shape[0], step):
                yield tensor[start:start + step].contiguous().view(torch.uint8)
            return
        yield tensor.contiguous().reshape(-1).view(torch.uint8)
        return
    row = tensor[0].numel() * tensor.element_size()
    if row >= max_bytes:
        for index in range(tensor.shape[0]):
            yield from dense_chunks(tensor[index], max_bytes)
        return
    rows = max(max_bytes // max(row, 1), 1)
    for start in range(0, tensor.shape[0], rows):
        yield tensor[start:start + rows].contiguous().reshape(-1).view(torch.uint8)
