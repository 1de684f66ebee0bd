"""Tensor-level edits: `rename`, `delete`, `copy` (checkpoint mode), `cast`, `resize` (both).

In checkpoint mode the document is an ordered map of names to Slots; renames,
deletions and copies replace its contents in one reversible step that keeps every
other name at its position. `cast` and `resize` replace a tensor's data but keep the
tensor object (and so its ties, and in model mode the Parameter an optimizer holds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..allocation import check_allocation, shape_words
from ..checkpoint import Slot
from ..errors import EditError
from ..io.dtypes import dtype_name, parse_dtype
from ..name_patterns import Substitution, compile_pattern
from ..schema import Field as F
from .base import Edit, names_text, register
from .init import INITIALIZERS, initializer, initializer_parameters, is_random

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import CheckpointDocument, Document


def _loaded_bytes(slot: Slot) -> int:
    return slot.nbytes if slot.loaded else 0


@register
class Rename(Edit):
    """Rename one tensor (`target` -> `to`) or many by regex (`pattern` -> `replacement`)."""

    op = "rename"
    fields = (
        F("target", "text", "the tensor to rename (with to)"),
        F("to", "text", "its new name", label="New name"),
        F("pattern", "text", "a regular expression over every name (with replacement)"),
        F("replacement", "text", "what each match becomes (\\1 for groups)"),
    )
    modes = frozenset({"checkpoint"})

    def parse(self) -> None:
        single = "target" in self.spec or "to" in self.spec
        regex = "pattern" in self.spec or "replacement" in self.spec
        if single == regex:
            raise EditError("rename: give either 'target' and 'to', or 'pattern' and "
                            "'replacement'")
        if single:
            for field in ("target", "to"):
                if not isinstance(self.spec.get(field), str) or not self.spec[field]:
                    raise EditError(f"rename.{field}: expected a tensor name")
            return
        if not isinstance(self.spec.get("pattern"), str) or not self.spec["pattern"]:
            raise EditError("rename.pattern: expected a regular expression")
        if not isinstance(self.spec.get("replacement"), str):
            raise EditError("rename.replacement: expected text (may be empty)")
        self.regex = compile_pattern(self.spec["pattern"], "rename.pattern")

    def describe(self) -> str:
        if "target" in self.spec:
            return f"Rename {self.spec['target']} to {self.spec['to']}"
        return f"Rename /{self.spec['pattern']}/ to '{self.spec['replacement']}'"

    def mapping(self, names: list[str]) -> dict[str, str]:
        """Old name -> new name for the names that change."""
        if "target" in self.spec:
            if self.spec["target"] not in names:
                raise EditError(f"rename.target: no tensor named '{self.spec['target']}'")
            return {self.spec["target"]: self.spec["to"]}
        result = {}
        bounded = Substitution("rename.pattern", len(names))
        for name in names:
            new = bounded.sub(self.regex, self.spec["replacement"], name, "rename.replacement")
            if new != name:
                result[name] = new
        if not result:
            raise EditError(f"rename.pattern: '{self.spec['pattern']}' changes no name")
        return result

    def perform(self, doc: CheckpointDocument, tx: Transaction) -> Any:
        entries = doc.entries
        mapping = self.mapping(list(entries))
        field = "rename.to" if "target" in self.spec else "rename.replacement"
        taken: dict[str, str] = {}
        items = []
        for name, slot in entries.items():
            new = mapping.get(name, name)
            if not new:
                raise EditError(f"{field}: '{name}' would get an empty name")
            if new in taken:
                raise EditError(f"{field}: '{name}' and '{taken[new]}' would both be "
                                f"named '{new}'")
            taken[new] = name
            items.append((new, slot))
        doc.replace_entries(tx, items, tuple([*mapping, *mapping.values()]))
        return [[old, new] for old, new in mapping.items()]


@register
class Delete(Edit):
    """Remove tensors (names or globs); tied names are removed one by one."""

    op = "delete"
    fields = (
        F("targets", "names", "tensors or globs to remove", required=True),
    )
    modes = frozenset({"checkpoint"})

    def parse(self) -> None:
        if not self.get_names("targets"):
            raise EditError("delete.targets: expected a name or a list of names")

    def describe(self) -> str:
        return f"Delete {names_text(self.spec['targets'])}"

    def perform(self, doc: CheckpointDocument, tx: Transaction) -> Any:
        doomed = set(doc.match_names(self.get_names("targets") or [], "delete.targets"))
        entries = doc.entries
        kept = [(name, slot) for name, slot in entries.items() if name not in doomed]
        alive = {id(slot) for _, slot in kept}
        freed = {id(slot): slot for name, slot in entries.items()
                 if name in doomed and id(slot) not in alive}
        owned = sum(_loaded_bytes(slot) for slot in freed.values())
        deleted = [name for name in entries if name in doomed]
        doc.replace_entries(tx, kept, tuple(deleted), owned)
        return deleted


@register
class Copy(Edit):
    """Add `to` as an independent copy of tensor `source`, right after it."""

    op = "copy"
    fields = (
        F("source", "text", "the tensor to copy", required=True),
        F("to", "text", "the new tensor's name", required=True, label="New name"),
    )
    modes = frozenset({"checkpoint"})

    def parse(self) -> None:
        for field in ("source", "to"):
            if not isinstance(self.spec.get(field), str) or not self.spec[field]:
                raise EditError(f"copy.{field}: expected a tensor name")

    def describe(self) -> str:
        return f"Copy {self.spec['source']} to {self.spec['to']}"

    def perform(self, doc: CheckpointDocument, tx: Transaction) -> Any:
        source, to = self.spec["source"], self.spec["to"]
        slot = doc.slot(source, "copy.source")
        entries = doc.entries
        if to in entries:
            raise EditError(f"copy.to: a tensor named '{to}' exists already")
        new = _independent_copy(slot)
        items = []
        for name, existing in entries.items():
            items.append((name, existing))
            if name == source:
                items.append((to, new))
        doc.replace_entries(tx, items, (to,), _loaded_bytes(new))
        return to


def _independent_copy(slot: Slot) -> Slot:
    """A Slot with the same values and its own storage (still lazy if `slot` is)."""
    load = getattr(slot.source, "load", None)
    if not slot.loaded and load is not None:
        # A load may be a view of the file's memory map, which the original would share
        # once read too: the copy clones what it loads.
        return Slot(loader=lambda: load().clone(), shape=slot.shape, dtype=slot.dtype,
                    source=slot.source)
    return Slot(slot.tensor.detach().clone())


def _float_check(op: str, name: str, dtype: torch.dtype) -> None:
    if not (dtype.is_floating_point or dtype.is_complex):
        raise EditError(f"{op}.dtype: '{name}' is a parameter; it must stay floating-point "
                        f"(got {dtype_name(dtype)})")


@register
class Cast(Edit):
    """Change the dtype of tensors (names or globs), e.g. to float16 or bfloat16.

    As `model.half()` and `model.to(dtype)` do, a glob or a module name changes the
    floating-point tensors it selects and leaves integer and bool ones (`position_ids`,
    `num_batches_tracked`, masks) as they are; a tensor named itself is cast whatever
    its dtype.
    """

    op = "cast"
    fields = (
        F("targets", "names", "tensors, modules or globs to cast", required=True),
        F("dtype", "text", "the new dtype: float16, bfloat16, float32, int8, ...", required=True),
    )

    def parse(self) -> None:
        text = self.get_str("dtype")
        dtype = parse_dtype(text or "")
        if dtype is None:
            raise EditError(f"cast.dtype: unknown dtype '{text}' (e.g. float16, bfloat16, "
                            "float32, int8)")
        self.dtype = dtype
        self.record(dtype=dtype_name(dtype))  # the canonical name: 'half' -> 'float16'

    def describe(self) -> str:
        return f"Cast {names_text(self.spec['targets'])} to {self.value('dtype')}"

    def perform(self, doc: Document, tx: Transaction) -> Any:
        names = doc.select_tensors(self.get_names("targets") or [], "cast.targets",
                                   bulk_floating_only=True)
        changing = [name for name in names if doc.tensor_meta(name)[1] != self.dtype]
        kinds = {row.name: row.kind for row in doc.rows()}
        for name in changing:
            if kinds[name] == "parameter":
                _float_check("cast", name, self.dtype)
        for name in changing:
            with torch.no_grad():
                new = doc.tensor(name).detach().to(self.dtype)
            doc.replace_data(tx, name, new)
        self.resolved["names"] = changing
        return changing


@register
class Resize(Edit):
    """Give a tensor a new shape (same number of dims): the overlapping region keeps its
    values, new positions are filled by an initializer (`method`, default zeros)."""

    op = "resize"
    fields = (
        F("target", "text", "the tensor to resize", required=True),
        F("shape", "list", "the new shape, as many dims as before", required=True,
          label="New shape"),
        F("method", "text", "initializer of the new positions", default="zeros",
          label="New elements"),
        F("args", "object", "keyword arguments of the initializer", label="Arguments"),
        F("seed", "seed", "seeds the random numbers; drawn and recorded when absent"),
    )

    def parse(self) -> None:
        shape = self.spec["shape"]
        if not isinstance(shape, list) or not all(
            isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape
        ):
            raise EditError("resize.shape: expected a list of sizes >= 0, e.g. [1000, 768]")
        method = self.get_str("method", "zeros")
        if method not in INITIALIZERS:
            raise EditError(f"resize.method: unknown initializer '{method}' "
                            f"(known: {', '.join(INITIALIZERS)})")
        args = self.spec.get("args", {})
        if not isinstance(args, dict):
            raise EditError("resize.args: expected an object of keyword arguments")
        accepted = initializer_parameters(method)
        for key in args:
            if key not in accepted:
                raise EditError(f"resize.args.{key}: '{method}' takes "
                                f"{', '.join(accepted) or 'no arguments'}")

    def describe(self) -> str:
        return f"Resize {self.value('target')} to {'x'.join(map(str, self.spec['shape']))}"

    def perform(self, doc: Document, tx: Transaction) -> Any:
        name = doc.canonical_name(self.spec["target"], "resize.target")
        self.record(target=name)
        shape = tuple(self.spec["shape"])
        old_shape, dtype = doc.tensor_meta(name)
        if len(shape) != len(old_shape):
            raise EditError(f"resize.shape: '{name}' has {len(old_shape)} dims "
                            f"{old_shape}; the new shape must have as many")
        method = self.spec.get("method", "zeros")
        _, low, high = INITIALIZERS[method]
        if len(shape) < low or (high is not None and len(shape) > high):
            raise EditError(f"resize.method: '{method}' cannot fill a tensor of "
                            f"{len(shape)} dims")
        numel = nonzero = 1
        for size in shape:
            numel *= size
            nonzero *= size or 1
        if nonzero >= 2**63:  # torch cannot make such a shape, even with no element
            raise EditError(f"resize.shape: the sizes of {shape_words(shape)} multiply past "
                            "2**63")
        check_allocation(doc, tx, numel * dtype.itemsize, "resize.shape",
                         f"a {dtype_name(dtype)} tensor of {shape_words(shape)}")
        tensor = doc.tensor(name)
        new = torch.empty(shape, dtype=dtype)
        generator = None
        if is_random(method):
            generator = torch.Generator().manual_seed(self.seed())
        args = dict(self.spec.get("args", {}))
        try:
            with torch.no_grad():
                if new.numel():
                    if generator is None:
                        initializer(method)(new, **args)
                    else:
                        initializer(method)(new, **args, generator=generator)
                overlap = tuple(slice(0, min(a, b)) for a, b in zip(old_shape, shape,
                                                                       strict=True))
                new[overlap] = tensor.detach()[overlap].to("cpu")
        except (RuntimeError, ValueError, TypeError) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise EditError(f"resize.method: '{method}' failed on {dtype_name(dtype)}: "
                            f"{message}") from None
        doc.replace_data(tx, name, new.to(tensor.device))
        return list(shape)
