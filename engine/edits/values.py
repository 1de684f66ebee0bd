"""Value edits: `set` (a value, an expression or another tensor), `scale` and `add`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..allocation import check_expression
from ..document.rows import shape_text
from ..errors import EditError
from ..expr import compile_expr
from ..indexing import parse_index, region_shape
from ..schema import Field as F
from .base import Edit, names_text, register
from .common import require_float

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document


@register
class SetValues(Edit):
    """Set a tensor, or a region of it, to a value, an expression over `x`, or a copy."""

    op = "set"
    fields = (
        F("target", "text", "the tensor to write", required=True),
        F("index", "text", "a region in NumPy notation, e.g. 0, :, :3", label="Region"),
        F("value", "any", "a number or nested list, broadcast to the region"),
        F("expr", "text", "an expression over x, the region's values", label="Expression"),
        F("from", "text", "another tensor, copied and cast", label="Source"),
        F("seed", "seed", "seeds the random numbers; drawn and recorded when absent"),
    )

    def parse(self) -> None:
        sources = [key for key in ("value", "expr", "from") if key in self.spec]
        if len(sources) != 1:
            raise EditError("set: give exactly one of 'value', 'expr' or 'from'")
        self.source = sources[0]
        if self.source == "expr":
            self.compiled = compile_expr(self.spec["expr"], "set.expr")
        elif self.source != "from":
            self.constant = _constant(self.spec["value"])

    def describe(self) -> str:
        where = self.value("target") + (f"[{self.spec['index']}]" if "index" in self.spec else "")
        return f"Set {where}"

    def perform(self, doc: Document, tx: Transaction) -> Any:
        name = doc.canonical_name(self.spec["target"], "set.target")
        self.record(target=name)
        shape, _dtype = doc.tensor_meta(name)
        index = None
        if "index" in self.spec:
            index = parse_index(self.spec["index"], shape, "set.index")
        region = region_shape(shape, index)
        tensor = doc.tensor(name, "set.target")
        values = self._values(doc, tx, tensor, index)
        try:
            fits = torch.broadcast_shapes(tuple(values.shape), region) == region
        except RuntimeError:
            fits = False
        if not fits:
            raise EditError(
                f"set.{self.source}: shape {shape_text(tuple(values.shape))} does not fit "
                f"{name}{'[' + self.spec['index'] + ']' if index is not None else ''} "
                f"of shape {shape_text(region)}"
            ) from None
        doc.write_values(tx, name, values, index)
        return None

    def _values(self, doc: Document, tx: Transaction, tensor: torch.Tensor,
                index: Any) -> torch.Tensor:
        if self.source == "value":
            return self.constant
        if self.source == "from":
            source_name = doc.canonical_name(self.spec["from"], "set.from")
            self.record(**{"from": source_name})
            source = doc.tensor(source_name, "set.from").detach()
            if source.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr():
                source = source.clone()  # copying a tensor onto itself must not read what it writes
            return source
        x = tensor.detach() if index is None else tensor.detach()[index]
        others = self._other_tensors(doc)
        check_expression(doc, tx, self.compiled, x, others)
        generator = None
        if self.compiled.uses_random:
            generator = torch.Generator().manual_seed(self.seed())
        try:
            values = self.compiled.evaluate(x, generator, others)
        except EditError:
            raise
        except Exception as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            shapes = "".join(f"; t({name!r}) is {shape_text(tuple(other.shape))}"
                             for name, other in others.items())
            where = f" (x is {shape_text(tuple(x.shape))}{shapes})" if others else ""
            raise EditError(f"set.expr: '{self.spec['expr']}' failed: {message}{where}") from None
        if values.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr():
            # x.t(), x.T, x.view(...) are views of the target: writing one into the
            # target would read what it writes.
            values = values.clone()
        return values


    def _other_tensors(self, doc: Document) -> dict[str, torch.Tensor]:
        """The tensors `t(...)` names, each checked against the document (one line for an
        unknown name) and resolved to its canonical name (recorded for the script)."""
        others: dict[str, torch.Tensor] = {}
        canonical: dict[str, str] = {}
        for name in self.compiled.tensor_names:
            try:
                resolved = doc.canonical_name(name, "set.expr")
            except EditError:
                raise EditError(f"set.expr: t({name!r}) names no tensor of the document") \
                    from None
            canonical[name] = resolved
            others[name] = doc.tensor(resolved, "set.expr")
        self.resolved["tensors"] = canonical
        return others


def _constant(value: Any) -> torch.Tensor:
    try:
        _check_numbers(value)
        return torch.tensor(value, dtype=torch.float64 if not _all_int(value) else torch.int64)
    except (TypeError, ValueError) as error:
        raise EditError(
            f"set.value: expected a number or a nested list of numbers ({error})"
        ) from None


def _check_numbers(value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _check_numbers(item)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"found {type(value).__name__}")


def _all_int(value: Any) -> bool:
    if isinstance(value, list):
        return all(_all_int(item) for item in value)
    return isinstance(value, int)


class _ScalarOp(Edit):
    """Multiply or add a number to whole tensors in place."""

    fields = (
        F("targets", "names", "tensors, modules or globs to change", required=True),
        F("value", "number", "the number to multiply by or add", required=True),
    )

    def perform(self, doc: Document, tx: Transaction) -> Any:
        # A glob or module selects its floating-point tensors, as a loop over a model's
        # parameters would; an integer tensor named itself is refused below.
        names = doc.select_tensors(self.get_names("targets") or [], f"{self.op}.targets",
                                   bulk_floating_only=True)
        for name in names:
            _shape, dtype = doc.tensor_meta(name)
            require_float(self.op, "targets", name, dtype)
        tensors = [doc.tensor(name) for name in names]

        def mutate() -> None:
            for tensor in tensors:
                self._apply(tensor, self.spec["value"])

        doc.change_in_place(tx, names, mutate)
        self.resolved["names"] = names
        return names

    def _apply(self, tensor: torch.Tensor, value: float) -> None:
        raise NotImplementedError


@register
class Scale(_ScalarOp):
    op = "scale"

    def describe(self) -> str:
        return f"Scale {names_text(self.spec['targets'])} by {self.spec['value']}"

    def _apply(self, tensor: torch.Tensor, value: float) -> None:
        tensor.mul_(value)


@register
class Add(_ScalarOp):
    op = "add"

    def describe(self) -> str:
        return f"Add {self.spec['value']} to {names_text(self.spec['targets'])}"

    def _apply(self, tensor: torch.Tensor, value: float) -> None:
        tensor.add_(value)
