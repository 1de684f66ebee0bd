"""How much memory one edit may allocate from the numbers in its spec.

An edit's spec can ask for any size: `resize` to `[1000000, 1000000]`, `replace` with a
`Linear` of 10**9 features, `replace_head` with 10**9 classes, an `attach` whose
`arch_args` ask for 10**9 classes, an expression whose broadcasting squares its input
(`x.reshape(-1, 1) * x.reshape(1, -1)`). A few bytes of recipe must not cost unbounded
memory, so each of these edits works out the bytes it will allocate before it allocates
any (on the meta device when it has to build something) and asks `check_allocation`.

The limit is the larger of `FLOOR_BYTES` and `DOCUMENT_FACTOR` times the document's own
size (what the document already holds, read or not), and never more than the memory
the system says is available; a caller that knows better sets it:
`Session.allocation_limit` (API) or `--max-edit-memory` (CLI); `allocation_allowed`
raises it for a block of edits.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import EditError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .changes import Transaction
    from .document import Document
    from .expr import CompiledExpr

#: an edit may always allocate this much
FLOOR_BYTES = 2**30
#: ... or this many times the document's size, whichever is larger
DOCUMENT_FACTOR = 2
#: the widest element an expression can make (complex128)
WIDEST_ELEMENT = 16


class AllocationRefused(EditError):
    """An edit would allocate more than its limit; nothing was allocated or changed.

    Attributes
    ----------
    needed : the bytes the edit asked for
    limit : the limit it was held to
    """

    def __init__(self, message: str, needed: int, limit: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.limit = limit


def size_text(nbytes: float) -> str:
    """'37.3 GiB' for a byte count."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:,.0f} {unit}" if unit == "B" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"  # pragma: no cover - the loop always returns


def shape_words(shape: Any) -> str:
    """A shape for a message, cut short when a hostile one is long: '[100000, 100000]'."""
    text = repr(list(shape))
    return text if len(text) <= 60 else text[:56] + "...]"


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping, or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def module_nbytes(module: nn.Module) -> int:
    """Bytes of the parameters and buffers of `module` (shared ones once); works on meta."""
    seen: set[int] = set()
    total = 0
    for tensor in [*module.parameters(), *module.buffers()]:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
    return total


def meta_peak(run: Callable[[], Any]) -> int:
    """Bytes of the largest tensor `run` makes, run on the meta device (nothing allocated).

    `run` builds meta tensors from meta inputs; each result of each torch operation is
    measured as it is made. When `run` fails part way (an operation without a meta
    kernel, a shape torch refuses), the tensors made until then count: the real run
    reports the failure in its own words.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class _Peak(TorchDispatchMode):
        peak = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            for item in tree_flatten(out)[0]:
                if isinstance(item, torch.Tensor):
                    self.peak = max(self.peak, item.numel() * item.element_size())
            return out

    mode = _Peak()
    with contextlib.suppress(Exception), mode:
        run()
    return mode.peak


def check_expression(doc: Document, tx: Transaction | None, compiled: CompiledExpr,
                     x: torch.Tensor, others: dict[str, torch.Tensor] | None = None) -> None:
    """Refuse an expression whose largest tensor would pass the limit, before it runs.

    An expression naming tensors k times (`x` and the `t(...)` of `others`) builds
    nothing larger than the largest of them to the power k in elements (broadcasting
    and `@` multiply their operands' sizes at most; every other whitelisted function
    keeps or shrinks them), so most expressions pass without running; the rest are run
    on the meta device first (`meta_peak`).
    """
    import torch

    others = others or {}
    caller = getattr(tx, "allocation_limit", None)
    largest = max([x.numel(), 1, *(other.numel() for other in others.values())])
    bound = WIDEST_ELEMENT * largest ** compiled.x_uses
    if bound <= (FLOOR_BYTES if caller is None else caller):
        return
    meta = x.detach().to("meta")
    metas = {name: other.detach().to("meta") for name, other in others.items()}
    generator = torch.Generator() if compiled.uses_random else None
    peak = meta_peak(lambda: compiled.evaluate(meta, generator, metas))
    check_allocation(doc, tx, peak, compiled.field,
                     f"a tensor inside the expression over {shape_words(x.shape)}")


def check_allocation(doc: Document, tx: Transaction | None, nbytes: int, field: str,
                     what: str) -> None:
    """Refuse an edit that would allocate `nbytes` beyond its limit (see the module).

    Parameters
    ----------
    tx : the edit's transaction; its `allocation_limit` is the caller's limit (None: the
        default rule)
    field : the spec field whose numbers ask for the memory ('resize.shape')
    what : what would be allocated, for the message ('a float32 tensor of [100000, 100000]')

    Raises
    ------
    AllocationRefused : one line naming the field, the size, the limit and how to raise it
    """
    caller = getattr(tx, "allocation_limit", None)
    if nbytes <= FLOOR_BYTES and caller is None:
        return  # the common case: no need to size the document
    check_bytes(nbytes, field, what, doc.totals().bytes, caller)


def check_bytes(nbytes: int, field: str, what: str, document_bytes: int,
                caller_limit: int | None = None) -> None:
    """`check_allocation` for a caller that knows the document's size, not the document
    (the trainer sizing its data by the model's bytes)."""
    limit, why = allocation_limit(document_bytes, caller_limit)
    if nbytes <= limit:
        return
    raise AllocationRefused(
        f"{field}: {what} would allocate {size_text(nbytes)}; an edit may allocate at most "
        f"{size_text(limit)} ({why}; raise it with --max-edit-memory or "
        "Session.allocation_limit)", nbytes, limit)


def allocation_limit(document_bytes: int, caller_limit: int | None) -> tuple[int, str]:
    """The limit an edit of a document of `document_bytes` is held to, and why, in words."""
    if caller_limit is not None:
        return caller_limit, "the limit set for this session"
    limit = max(FLOOR_BYTES, DOCUMENT_FACTOR * document_bytes)
    why = (f"the larger of {size_text(FLOOR_BYTES)} and {DOCUMENT_FACTOR}x the document's "
           f"{size_text(document_bytes)}")
    available = available_memory()
    if available is not None and available < limit:
        return available, f"{why}, but only {size_text(available)} of memory is available"
    return limit, why


@contextlib.contextmanager
def allocation_allowed(holder: Any, nbytes: int) -> Iterator[None]:
    """Let the edits applied in the block allocate up to `nbytes` (a user said yes)."""
    before = holder.allocation_limit
    holder.allocation_limit = max(nbytes, before or 0)
    try:
        yield
    finally:
        holder.allocation_limit = before


#: an architecture built for a file may hold this many times the file's tensors (a
#: bfloat16 checkpoint fills a float32 model of twice its size; a partial one, more)
FILE_FACTOR = 4


def check_build(build: Callable[[], nn.Module], file_bytes: int | None, what: str) -> None:
    """Refuse to build a model whose size comes from untrusted numbers when it is too big.

    A folder's config.json (`hidden_size: 10**7`) or a user's arch-args
    (`num_classes: 10**9`) are a few bytes that can ask for terabytes. `build` is run
    on the meta device first (nothing allocated) and the model's bytes are held to the
    larger of `FLOOR_BYTES` and `FILE_FACTOR` x the tensors of the file it is built for
    (`file_bytes`), or, with no file, to the memory available. A constructor that cannot
    run on meta is left to the real build, which reports its own failure.

    Raises
    ------
    ArchError : one line naming `what`, the model's size and the limit
    """
    import torch

    from .errors import ArchError

    try:
        with torch.device("meta"):
            model = build()
    except Exception:
        return
    nbytes = module_nbytes(model)
    if file_bytes is None:
        limit, why = available_memory(), "the memory available"
        if limit is None:
            return
    else:
        limit = max(FLOOR_BYTES, FILE_FACTOR * file_bytes)
        why = (f"the larger of {size_text(FLOOR_BYTES)} and {FILE_FACTOR}x the "
               f"{size_text(file_bytes)} of tensors in the file")
        available = available_memory()
        if available is not None and available < limit:
            limit, why = available, f"{why}, but only {size_text(available)} is available"
    if nbytes > limit:
        raise ArchError(f"arch: {what} describes a model of {size_text(nbytes)}, more than "
                        f"{size_text(limit)} ({why}); refused before building it")
