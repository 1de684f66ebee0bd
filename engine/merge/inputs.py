"""The inputs of a merge, read one tensor at a time and never kept.

A file input (a .safetensors file, a sharded set, a .pt file, a Hugging Face folder) is
opened through the io layer's readers: headers only, every tensor left on disk. A
tensor is read when the merge needs it, into memory of its own (plain reads, not the
shared memory map, so that what a merge has read is released as soon as it is merged:
memory stays at a few tensors whatever the size of the inputs). The open document
("self") is an input too: its tensors are read as they are now, a lazy one from its
file without loading it into the document.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import EditError, FileError
from ..io import formats
from ..io.readers import read_detected
from ..io.sources import TensorSource
from .spec import SELF

if TYPE_CHECKING:
    from ..checkpoint import Slot
    from ..document import Document


class MergeInput:
    """One model of a merge: its tensor names, their shapes and dtypes, and a reader.

    Attributes
    ----------
    label : what messages call it (the path as given, or "self")
    folder : the Hugging Face folder it was read from (its config, tokenizer), if any
    """

    label: str
    folder: Path | None = None

    def names(self) -> list[str]:
        """Every tensor name, in the input's order."""
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        """Shape and dtype, read from the header."""
        raise NotImplementedError

    def read(self, name: str) -> torch.Tensor:
        """The tensor's values, detached, on the CPU (a tensor of its own for file inputs)."""
        raise NotImplementedError


class FileInput(MergeInput):
    """A checkpoint file or folder, opened lazily (see `engine.io.readers`).

    Raises
    ------
    FileError : unreadable, damaged, or a pickle that would run code (never trusted here)
    """

    def __init__(self, path: str) -> None:
        self.label = path
        found = formats.detect(path)
        loaded = read_detected(found)
        self.folder = found.folder
        self.path = found.path
        self._entries: dict[str, Slot] = loaded.state.entries

    def names(self) -> list[str]:
        return list(self._entries)

    def has(self, name: str) -> bool:
        return name in self._entries

    def meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        slot = self._entries[name]
        return slot.shape, slot.dtype

    def read(self, name: str) -> torch.Tensor:
        slot = self._entries[name]
        if not slot.loaded and isinstance(slot.source, TensorSource):
            return read_fresh(slot.source)
        return slot.tensor.detach().to("cpu")


class DocumentInput(MergeInput):
    """The open document, as it is now (tensors read, never changed)."""

    label = SELF

    def __init__(self, document: Document) -> None:
        self.document = document
        self._rows = {row.name: row for row in document.rows(persistent_only=True)}

    def names(self) -> list[str]:
        return list(self._rows)

    def has(self, name: str) -> bool:
        return name in self._rows

    def meta(self, name: str) -> tuple[tuple[int, ...], torch.dtype]:
        row = self._rows[name]
        return row.shape, row.dtype

    def read(self, name: str) -> torch.Tensor:
        row = self._rows[name]
        source = row.unread_source
        if isinstance(source, TensorSource):
            return read_fresh(source)  # lazy: read without loading it into the document
        return row.load().detach().to("cpu")


def read_fresh(source: TensorSource) -> torch.Tensor:
    """Read a stored tensor into memory of its own by plain reads (no shared map)."""
    if source.nbytes == 0:
        return torch.empty(source.shape, dtype=source.dtype)
    flat = torch.empty(source.nbytes, dtype=torch.uint8)
    source.file.read_into(memoryview(flat.numpy()), source.offset)
    return flat.view(source.dtype).reshape(source.shape)


def open_inputs(paths: list[str], document: Document | None, field: str) -> dict[str, MergeInput]:
    """Open every input by its path ("self": the document), headers only.

    Raises
    ------
    EditError : "self" without a document, or a file that cannot be read (names `field`)
    """
    inputs: dict[str, MergeInput] = {}
    for path in paths:
        if path == SELF:
            if document is None:
                raise EditError(f"{field}: \"self\" names the open document, and there is "
                                "none here (give a path)")
            inputs[path] = DocumentInput(document)
            continue
        try:
            inputs[path] = FileInput(path)
        except FileError as error:
            raise EditError(f"{field}: {error}") from None
    return inputs
