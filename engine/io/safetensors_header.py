"""Read and check the header of a .safetensors file before any tensor is touched.

The file is `8-byte little-endian header length N`, `N bytes of JSON`, then the
tensor bytes. Everything a damaged or hostile file can get wrong is checked here,
each with one message that names the file and the problem: the header length (too
large, beyond the end of the file), the JSON (not UTF-8, not an object, duplicate
names), each entry (unknown dtype, bad shape, offsets that do not match the shape),
and the offsets together (overlapping, with gaps, or past the end of the file).
"""

from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import FileError
from .dtypes import SAFETENSORS_DTYPES
from .json_files import JSONProblem, iter_members
from .sources import StoredFile, TensorSource

#: the safetensors library refuses headers larger than this; so do we
MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"


@dataclass
class SafetensorsHeader:
    """The checked header of one file.

    Attributes
    ----------
    file : the open file
    metadata : the `__metadata__` strings
    sources : name -> where its bytes are, in header order
    data_start : absolute offset of the first tensor byte
    """

    file: StoredFile
    metadata: dict[str, str] = field(default_factory=dict)
    sources: dict[str, TensorSource] = field(default_factory=dict)
    data_start: int = 0


def read_header(file: StoredFile) -> SafetensorsHeader:
    """Parse and check the header of `file`.

    Raises
    ------
    FileError : anything wrong with the header or the offsets; names the file
    """
    path = file.path
    if file.size < 8:
        what = "empty" if file.size == 0 else f"only {file.size} bytes long"
        raise FileError(path, f"not a safetensors file ({what}; truncated?)")
    (length,) = struct.unpack("<Q", file.read(0, 8))
    if length > MAX_HEADER_BYTES:
        raise FileError(path, f"safetensors header claims {length:,} bytes (more than the "
                        f"{MAX_HEADER_BYTES:,} allowed); damaged or not a safetensors file")
    if 8 + length > file.size:
        raise FileError(path, f"safetensors header claims {length:,} bytes but the file has "
                        f"{file.size - 8:,} after the length (truncated?)")
    raw = bytearray(length)
    file.read_into(memoryview(raw), 8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileError(path, "safetensors header is not UTF-8 text (damaged?)") from None
    del raw  # a 100 MB header is held once at a time: bytes, then text, then objects
    if not text.lstrip().startswith("{"):
        raise FileError(path, "safetensors header is not a JSON object (not a safetensors file?)")
    header = SafetensorsHeader(file=file, data_start=8 + length)
    data_size = file.size - header.data_start
    # Read entry by entry: a parsed entry is freed once its source exists, so a header
    # of a million tensors never exists as a million parsed dicts (engine.io.json_files).
    begins, ends = array("q"), array("q")
    metadata: Any = None
    try:
        for name, entry in iter_members(text):
            if name in header.sources or (name == METADATA_KEY and metadata is not None):
                raise FileError(path, f"safetensors header names '{name}' twice")
            if name == METADATA_KEY:
                metadata = entry
                continue
            dtype, shape, begin, end = _check_entry(path, name, entry)
            begins.append(begin)
            ends.append(end)
            header.sources[name] = TensorSource(file, name, header.data_start + begin,
                                                end - begin, dtype, shape)
    except JSONProblem as error:
        raise FileError(path, f"safetensors header is not valid JSON ({error})") from None
    except OverflowError:  # an offset past 2**63 cannot be in any file
        raise FileError(path, f"tensor '{name}' has data_offsets past 2**63") from None
    del text
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
        ):
            raise FileError(path, "safetensors __metadata__ must map text to text")
        header.metadata = metadata
    _check_spans(path, begins, ends, list(header.sources), data_size)
    return header


def _check_entry(path: Any, name: str, entry: Any) -> tuple[torch.dtype, tuple[int, ...], int, int]:
    if not isinstance(entry, dict):
        raise FileError(path, f"safetensors entry '{name}' is not an object")
    dtype_text = entry.get("dtype")
    if not isinstance(dtype_text, str):
        raise FileError(path, f"safetensors entry '{name}' has no dtype")
    dtype = SAFETENSORS_DTYPES.get(dtype_text)
    if dtype is None:
        raise FileError(path, f"tensor '{name}' has unknown dtype '{dtype_text}'")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape
    ):
        raise FileError(path, f"tensor '{name}' has a bad shape {shape!r} "
                        "(expected a list of sizes >= 0)")
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise FileError(path, f"tensor '{name}' has bad data_offsets {offsets!r}")
    begin, end = offsets
    if begin < 0 or end < begin:
        raise FileError(path, f"tensor '{name}' has bad data_offsets [{begin}, {end}]")
    numel = math.prod(shape)
    nonzero = math.prod(size or 1 for size in shape)
    expected = numel * dtype.itemsize
    if end - begin != expected:
        raise FileError(path, f"tensor '{name}' spans {end - begin} bytes but its shape "
                        f"{_shape_text(shape)} of {dtype_text} needs {expected}")
    # A zero-element shape such as [0, 10**30] spans 0 bytes, but torch cannot make a tensor
    # of it: the non-zero sizes must multiply to less than 2**63 (as the safetensors
    # library requires too).
    if nonzero >= 2**63:
        raise FileError(path, f"tensor '{name}' has a shape {_shape_text(shape)} whose sizes "
                        "multiply past 2**63 (damaged or crafted file)")
    return dtype, tuple(shape), begin, end


def _shape_text(shape: list[int]) -> str:
    text = repr(shape)
    return text if len(text) <= 60 else text[:57] + "...]"


def _check_spans(path: Any, begins: array, ends: array, names: list[str],
                 data_size: int) -> None:
    """The byte ranges must tile the data exactly: no overlap, no gap, nothing past the end."""
    order: Any = range(len(begins))
    if any((begins[i], ends[i]) > (begins[i + 1], ends[i + 1]) for i in order[:-1]):
        # Header order is not file order (names are sorted, bytes by dtype); an empty
        # tensor sorts before the one that starts where it is.
        order = sorted(order, key=lambda i: (begins[i], ends[i]))
    position = 0
    previous = None
    for i in order:
        begin, end, name = begins[i], ends[i], names[i]
        if begin < position:
            raise FileError(path, f"tensors '{previous}' and '{name}' overlap in the file "
                            "(damaged or crafted file)")
        if begin > position:
            raise FileError(path, f"unused bytes before tensor '{name}' (offset {position} to "
                            f"{begin}); damaged or crafted file")
        position = end
        previous = name
    if position > data_size:
        raise FileError(path, f"tensor '{previous}' ends at byte {position:,} of the data but "
                        f"the file holds {data_size:,} (truncated?)")
    if position < data_size:
        raise FileError(path, f"{data_size - position:,} unexpected bytes after the last "
                        "tensor (damaged file?)")
