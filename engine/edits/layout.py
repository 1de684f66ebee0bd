"""Checkpoint-mode ops across tensors: `concat`, `split`, `permute`, `transpose`, `reshape`,
`copy_from_file`.

Fusing q/k/v is `{"op": "concat", "sources": ["q.weight", "k.weight", "v.weight"], "to":
"qkv.weight", "dim": 0}`; splitting it back is `{"op": "split", "source": "qkv.weight",
"sizes": [64, 64, 64], "to": ["q.weight", "k.weight", "v.weight"], "dim": 0}`. New
tensors take the position of the first source; the sources are removed unless
`keep_sources`. Layout changes (`permute`, `transpose`, `reshape`) give the tensor (every
name tied to it) a new Slot holding a contiguous copy, so a checkpoint stays loadable by
any reader. Every op is one undoable step that restores names, positions and values.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoint import Slot
from ..document.rows import shape_text
from ..errors import EditError, FileError
from ..io import read_state_dict
from ..schema import Field as F
from .base import Edit, names_text, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import CheckpointDocument

_CHECKPOINT = frozenset({"checkpoint"})


def _dim(value: Any, ndim: int, field: str, name: str) -> int:
    """A dim index (negative counts from the end) checked against `ndim`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EditError(f"{field}: expected an integer dim")
    if not -ndim <= value < ndim:
        raise EditError(f"{field}: dim {value} is out of range for '{name}' ({ndim} dims)")
    return value % ndim


def _new_name(doc: CheckpointDocument, name: Any, field: str, freed: set[str] = frozenset()
              ) -> str:
    if not isinstance(name, str) or not name:
        raise EditError(f"{field}: expected a tensor name")
    if name in doc.entries and name not in freed:
        raise EditError(f"{field}: a tensor named '{name}' exists already")
    return name


def _int_list(value: Any, field: str, minimum: int) -> list[int]:
    if not isinstance(value, list) or not value or not all(
            isinstance(item, int) and not isinstance(item, bool) and item >= minimum
            for item in value):
        raise EditError(f"{field}: expected a list of integers >= {minimum}")
    return list(value)


def _insert(doc: CheckpointDocument, tx: Transaction, removed: list[str], at: str,
            added: list[tuple[str, Slot]], changed: tuple[str, ...], owned: int = 0) -> None:
    """Replace the names `removed` by `added`, in one undoable step: the new names stand
    where `at` stood when it goes, else right after it."""
    items: list[tuple[str, Slot]] = []
    for name, slot in doc.entries.items():
        if name == at and name in removed:
            items += added
            continue
        if name in removed:
            continue
        items.append((name, slot))
        if name == at:
            items += added
    doc.replace_entries(tx, items, changed, owned)


def _loaded_bytes(doc: CheckpointDocument, names: list[str], kept: set[str]) -> int:
    """Bytes of loaded tensors only the undo data keeps alive once `names` are gone."""
    alive = {id(doc.entries[name]) for name in doc.entries if name not in names or name in kept}
    slots = {id(doc.entries[name]): doc.entries[name] for name in names}
    return sum(slot.nbytes for key, slot in slots.items() if key not in alive and slot.loaded)


@register
class Concat(Edit):
    """Concatenate tensors along a dim into one new tensor (fuse q, k, v)."""

    op = "concat"
    fields = (
        F("sources", "list", "the tensors to join, in order (two or more)", required=True),
        F("to", "text", "the new tensor's name", required=True, label="New name"),
        F("dim", "int", "the dim to join along", default=0),
        F("keep_sources", "bool", "keep the sources besides the new tensor", default=False),
    )
    modes = _CHECKPOINT

    def parse(self) -> None:
        sources = self.spec["sources"]
        if not isinstance(sources, list) or len(sources) < 2 or not all(
                isinstance(name, str) and name for name in sources):
            raise EditError("concat.sources: expected a list of two or more tensor names")
        if len(set(sources)) != len(sources):
            raise EditError("concat.sources: a tensor is listed twice")
        self.get_str("to")
        self.get_int("dim", 0)
        self.get_bool("keep_sources")

    def describe(self) -> str:
        return f"Concatenate {names_text(self.spec['sources'])} into {self.spec['to']}"

    def perform(self, doc: CheckpointDocument, tx: Transaction) -> Any:
        sources = self.spec["sources"]
        slots = [doc.slot(name, "concat.sources") for name in sources]
        first = slots[0]
        keep = self.get_bool("keep_sources")
        to = _new_name(doc, self.spec["to"], "concat.to", set() if keep else set(sources))
        ndim = len(first.shape)
        if ndim == 0:
            raise EditError(f"concat.sources: '{sources[0]}' is a scalar; it has no dim to join")
        dim = _dim(self.spec.get("dim", 0), ndim, "concat.dim", sources[0])
        for name, slot in zip(sources[1:], slots[1:], strict=True):
            if slot.dtype != first.dtype:
                raise EditError(f"concat.sources: '{name}' is {slot.dtype} but '{sources[0]}' "
                                f"is {first.dtype} (cast one first)")
            other = list(slot.shape)
            if len(other) != ndim or any(a != b for i, (a, b) in enumerate(
                    zip(other, first.shape, strict=False)) if i != dim):
                raise EditError(f"concat.sources: '{name}' has shape {shape_text(slot.shape)}, "
                                f"which does not join '{sources[0]}' {shape_text(first.shape)} "
                                f"along dim {dim} (all other sizes must agree)")
        with torch.no_grad():
            joined = torch.cat([slot.tensor.detach() for slot in slots], dim=dim).contiguous()
        removed = [] if keep else list(sources)
        owned = 0 if keep else _loaded_bytes(doc, removed, set())
        _insert(doc, tx, removed, sources[0], [(to, Slot(joined))], (to, *removed), owned)
        self.resolved.update(sources=list(sources), dim=dim)
        return {"to": to, "shape": list(joined.shape)}


@register
class Split(Edit):
    """Split one tensor along a dim into several new tensors of the given sizes."""

    op = "split"
    fields = (
        F("source", "text", "the tensor to split", required=True),
        F("sizes", "list", "the size of each part along dim (they add up to its size)",
          required=True),
        F("to", "list", "the new tensors' names, one per size", required=True),
        F("dim", "int", "the dim to split along", default=0),
        F("keep_source", "bool", "keep the source besides the parts", default=False),
    )
    modes = _CHECKPOINT

    def parse(self) -> None:
        self.get_str("source")
        sizes = _int_list(self.spec["sizes"], "split.sizes", 0)
        to = self.spec["to"]
        if not isinstance(to, list) or not all(isinstance(name, str) and name for name in to):
            raise EditError("split.to: expected a list of tensor names")
        if len(to) != len(sizes):
            raise EditError(f"split.to: {len(to)} names for {len(sizes)} sizes")
        if len(set(to)) != len(to):
            raise EditError("split.to: a name is listed twice")
        self.get_int("dim", 0)
        self.get_bool("keep_source")

    def describe(self) -> str:
        return f"Split {self.spec['source']} into {names_text(self.spec['to'])}"

    def perform(self, doc: CheckpointDocument, tx: Transaction) -> Any:
        source = self.spec["source"]
        slot = doc.slot(source, "split.source")
        keep = self.get_bool("keep_source")
        freed = set() if keep else {source}
        names = [_new_name(doc, name, "split.to", freed) for name in self.spec["to"]]
        if len(slot.shape) == 0:
            raise EditError(f"split.source: '{source}' is a scalar; it has no dim to split")
        dim = _dim(self.spec.get("dim", 0), len(slot.shape), "split.dim", source)
        sizes = self.spec["sizes"]
        if sum(sizes) != slot.shape[dim]:
            raise EditError(f"split.sizes: {' + '.join(map(str, sizes))} = {sum(sizes)}, but "
                            f"'{source}' has {slot.shape[dim]} along dim {dim}")
        with torch.no_grad():
            parts = [part.contiguous().clone() for part in
                     torch.split(slot.tensor.detach(), sizes, dim=dim)]
        removed = [] if keep else [source]
        owned = 0 if keep else _loaded_bytes(doc, removed, set())
        added = [(name, Slot(part)) for name, part in zip(names, parts, strict=True)]
        _insert(doc, tx, removed, source, added, (*names, *removed), owned)
        self.resolved.update(dim=dim)
        return names


class _LayoutOp(Edit):
    """A new layout for one tensor's values (every name tied to it follows)."""

    modes = _CHECKPOINT

    def perform(self, doc: CheckpointDocument, tx: Transaction) -> Any:
        name = self.spec["target"]
        slot = doc.slot(name, f"{self.op}.target")
        values = self.relayout(name, slot)
        doc.replace_slot(tx, name, Slot(values.contiguous().clone()))
        return list(values.shape)

    def relayout(self, name: str, slot: Slot) -> torch.Tensor:
        raise NotImplementedError


@register
class Permute(_LayoutOp):
    """Reorder a tensor's dims (`dims` is a permutation, as `torch.permute`)."""

    op = "permute"
    fields = (
        F("target", "text", "the tensor to permute", required=True),
        F("dims", "list", "the new order of the dims (a permutation, as torch.permute)",
          required=True),
    )

    def parse(self) -> None:
        self.get_str("target")
        _int_list(self.spec["dims"], "permute.dims", -64)

    def describe(self) -> str:
        return f"Permute {self.spec['target']} to {tuple(self.spec['dims'])}"

    def relayout(self, name: str, slot: Slot) -> torch.Tensor:
        ndim = len(slot.shape)
        dims = [_dim(d, ndim, "permute.dims", name) for d in self.spec["dims"]]
        if sorted(dims) != list(range(ndim)):
            raise EditError(f"permute.dims: {self.spec['dims']} is not a permutation of the "
                            f"{ndim} dims of '{name}' {shape_text(slot.shape)}")
        self.resolved["dims"] = dims
        return slot.tensor.detach().permute(dims)


@register
class Transpose(_LayoutOp):
    """Swap two dims of a tensor (default 0 and 1: a matrix transposed)."""

    op = "transpose"
    fields = (
        F("target", "text", "the tensor to transpose", required=True),
        F("dim0", "int", "one dim to swap", default=0, minimum=-64),
        F("dim1", "int", "the other dim", default=1, minimum=-64),
    )

    def parse(self) -> None:
        self.get_str("target")
        self.get_int("dim0", 0, minimum=-64)
        self.get_int("dim1", 1, minimum=-64)

    def describe(self) -> str:
        return f"Transpose {self.spec['target']}"

    def relayout(self, name: str, slot: Slot) -> torch.Tensor:
        ndim = len(slot.shape)
        if ndim < 2:
            raise EditError(f"transpose.target: '{name}' has {ndim} dim(s); transpose swaps two")
        dim0 = _dim(self.spec.get("dim0", 0), ndim, "transpose.dim0", name)
        dim1 = _dim(self.spec.get("dim1", 1), ndim, "transpose.dim1", name)
        self.resolved.update(dim0=dim0, dim1=dim1)
        return slot.tensor.detach().transpose(dim0, dim1)


@register
class Reshape(_LayoutOp):
    """Give a tensor a new shape with the same number of elements (one size may be -1)."""

    op = "reshape"
    fields = (
        F("target", "text", "the tensor to reshape", required=True),
        F("shape", "list", "the new shape (same element count; one size may be -1)",
          required=True),
    )

    def parse(self) -> None:
        self.get_str("target")
        shape = _int_list(self.spec["shape"], "reshape.shape", -1)
        if shape.count(-1) > 1:
            raise EditError("reshape.shape: at most one size may be -1")

    def describe(self) -> str:
        return f"Reshape {self.spec['target']} to {'x'.join(map(str, self.spec['shape']))}"

    def relayout(self, name: str, slot: Slot) -> torch.Tensor:
        shape = list(self.spec["shape"])
        count = math.prod(slot.shape)
        known = math.prod(size for size in shape if size != -1)
        if -1 in shape:
            if known == 0 or count % known:
                raise EditError(f"reshape.shape: {shape_text(shape)} cannot hold the {count:,} "
                                f"elements of '{name}' {shape_text(slot.shape)}")
            shape[shape.index(-1)] = count // known
        if math.prod(shape) != count:
            raise EditError(f"reshape.shape: {shape_text(shape)} has {math.prod(shape):,} "
                            f"elements; '{name}' {shape_text(slot.shape)} has {count:,}")
        self.resolved["shape"] = shape
        return slot.tensor.detach().reshape(shape)


@register
class CopyFromFile(Edit):
    """Copy one tensor of another file into the checkpoint, by name."""

    op = "copy_from_file"
    fields = (
        F("path", "text", "the file to copy from (safetensors, .pt read with weights_only, "
          "a sharded index or a folder)", required=True),
        F("source", "text", "the tensor's name in that file", required=True),
        F("to", "text", "its name here (default the same name)", label="New name"),
        F("replace", "bool", "overwrite a tensor of that name", default=False),
    )
    modes = _CHECKPOINT

    def parse(self) -> None:
        self.get_str("path")
        self.get_str("source")
        self.get_str("to")
        self.get_bool("replace")

    def describe(self) -> str:
        return f"Copy {self.spec['source']} from {Path(self.spec['path']).name}"

    def perform(self, doc: CheckpointDocument, tx: Transaction) -> Any:
        source = self.spec["source"]
        to = self.spec.get("to") or source
        self.record(to=to)
        try:
            stored = read_state_dict(self.spec["path"])
        except FileError as error:
            raise EditError(f"copy_from_file.path: {error}") from None
        if source not in stored:
            near = [name for name in stored if name.endswith(source.rsplit(".", 1)[-1])][:3]
            hint = f" (e.g. {', '.join(near)})" if near else ""
            raise EditError(f"copy_from_file.source: {self.spec['path']} has no tensor "
                            f"'{source}'{hint}")
        values = stored[source].detach().contiguous().clone()
        if to in doc.entries:
            if not self.get_bool("replace"):
                raise EditError(f"copy_from_file.to: '{to}' exists already (set replace to "
                                "overwrite it)")
            doc.replace_slot(tx, to, Slot(values))
            return {"to": to, "shape": list(values.shape), "replaced": True}
        items = [*doc.entries.items(), (to, Slot(values))]
        doc.replace_entries(tx, items, (to,))
        return {"to": to, "shape": list(values.shape), "replaced": False}
