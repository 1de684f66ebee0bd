"""Bound what a `weights_only` load may allocate outside the file's own bytes.

`torch.load(weights_only=True)` runs no code from the file, but the calls it allows can
still turn a few bytes into gigabytes: `bytearray(10**9)` is four bytes of pickle,
`_codecs.encode` nested a few times doubles its input each time, a storage or legacy
tensor constructor takes its size as a number, a quantized tensor allocates the size its
pickle claims. Before loading, the pickle is run through `engine.io.pickle_machine` with
rules that estimate every such allocation from the literal arguments; past the budget the
file is refused in one line, before anything is allocated. What the pickle spells out
itself (strings, bytes, containers of items) is proportional to the file and not counted.

The legacy format's storages are allocated at the size the pickle declares before their
bytes are read: those declarations must fit in the file. `engine.io.trust` runs these
rules in the same pass that lists a file's imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .pickle_machine import CallRules, Value

#: bytes that calls in a checkpoint's pickle may allocate beyond what the file spells out
ALLOCATION_BUDGET = 256 * 2**20
#: `_codecs.encode` output per input byte at most ('unicode_escape' of a non-BMP char: 10)
ENCODE_GROWTH = 10
#: bytes a set/dict entry may take, per member of the input
ENTRY_BYTES = 128
#: bytes per element assumed for storages and tensors built from a size (the largest dtype)
ELEMENT_BYTES = 8

_STORAGE_AND_TENSOR_PREFIXES = ("torch.cuda.", "torch.sparse.", "torch.storage.")
_FREE = frozenset({
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_nested_tensor", "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_device_tensor_from_numpy", "torch.nn.parameter.Parameter",
    "torch.serialization._get_layout", "torch.device", "builtins.complex", "<build>",
})
_COLLECTIONS = frozenset({"builtins.set", "builtins.frozenset", "collections.Counter",
                          "collections.OrderedDict"})


@dataclass
class StorageClaim:
    """A storage a legacy-format pickle declares: its key and its size in bytes."""

    key: str
    nbytes: int


@dataclass
class AllocationRules(CallRules):
    """Call rules that add up what the calls of a pickle would allocate.

    Scanning goes on past the budget (so the same pass can list imports); `problem`
    holds the one-line refusal from the first call that went over.
    """

    budget: int = ALLOCATION_BUDGET
    spent: int = 0
    problem: str | None = None
    claims: list[StorageClaim] = field(default_factory=list)

    def call(self, callee: Value, args: tuple[Value, ...], position: int) -> Value:
        name = callee.value if callee.kind == "global" else None
        if name is None or name in _FREE:
            return Value("opaque")
        if name == "builtins.bytearray":
            size = _length(args[0]) if args else 0
            return self.spend(Value("bytes", count=size), size, name, position)
        if name == "_codecs.encode":
            size = ENCODE_GROWTH * (_length(args[0]) if args else 0) + 64
            return self.spend(Value("bytes", count=size), size, name, position)
        if name in _COLLECTIONS:
            count = _length(args[0]) if args else 0
            return self.spend(Value("dict", count=count), ENTRY_BYTES * count, name, position)
        if name == "torch.Size":
            count = _length(args[0]) if args else 0
            return self.spend(Value("tuple", count=count), 8 * count, name, position)
        if name == "torch._utils._rebuild_qtensor":
            # It allocates a quantized tensor of the claimed size before viewing the storage.
            size = _elements(args[2]) * ELEMENT_BYTES if len(args) > 2 else 0
            return self.spend(Value("opaque"), size, name, position)
        if _is_constructor(name):
            # Legacy constructors: torch.FloatTensor(10**5, 10**5), UntypedStorage(10**12).
            if all(arg.kind == "number" for arg in args):
                size = math.prod(_length(arg) for arg in args) * ELEMENT_BYTES if args else 0
            else:
                size = sum(_length(arg) for arg in args) * ELEMENT_BYTES
            return self.spend(Value("opaque"), size, name, position)
        return Value("opaque")  # not allowed by weights_only: torch refuses it

    def persistent(self, pid: Value, position: int) -> Value:
        items = pid.items if pid.kind == "tuple" else ()
        if len(items) >= 5 and items[0].kind == "text" and items[0].value == "storage":
            storage_type = items[1].value if items[1].kind == "global" else ""
            self.claims.append(StorageClaim(str(items[2].value),
                                            _length(items[4]) * _storage_itemsize(storage_type)))
        return Value("opaque")

    def spend(self, value: Value, size: int, name: str, position: int) -> Value:
        self.spent += max(size, 0)
        if self.spent > self.budget and self.problem is None:
            self.problem = (f"refused: its pickle asks for {_bytes(self.spent)} outside tensor "
                            f"storage (a call of {name} at byte {position}); the limit is "
                            f"{_bytes(self.budget)} (damaged or crafted file)")
        value.size = size
        return value

    def storage_problem(self, file_size: int) -> str | None:
        """For the legacy format: storages declared larger than the file holds."""
        declared = sum(claim.nbytes for claim in self.claims)
        if declared <= file_size:
            return None
        return (f"refused: its pickle declares {_bytes(declared)} of tensor storage but the "
                f"file holds {_bytes(file_size)} (damaged or crafted file)")


def _is_constructor(name: str) -> bool:
    if name == "torch.Tensor":
        return True
    if not (name.startswith("torch.") and name.endswith(("Storage", "Tensor"))):
        return False
    return name.count(".") == 1 or name.startswith(_STORAGE_AND_TENSOR_PREFIXES)


def _length(value: Value) -> int:
    """A member count, a character or byte count, or the value of an integer argument."""
    if value.kind == "number":
        number = value.value
        return number if isinstance(number, int) and not isinstance(number, bool) and \
            number > 0 else 0
    return value.count


def _elements(shape: Value) -> int:
    if shape.kind != "tuple":
        return _length(shape)
    return math.prod(_length(item) for item in shape.items)


def _storage_itemsize(name: str) -> int:
    short = name.rpartition(".")[2]
    for prefix, size in (("Double", 8), ("Long", 8), ("ComplexDouble", 16),
                         ("ComplexFloat", 8), ("Float", 4), ("Int", 4), ("Half", 2),
                         ("BFloat16", 2), ("Short", 2), ("Untyped", 1), ("Byte", 1),
                         ("Char", 1), ("Bool", 1), ("QInt32", 4), ("QInt8", 1),
                         ("QUInt8", 1)):
        if short.startswith(prefix):
            return size
    return ELEMENT_BYTES


def _bytes(count: int) -> str:
    if count >= 2**70:
        return f"about 2**{count.bit_length() - 1} bytes"  # never str() a huge int
    if count >= 2**30:
        return f"{count / 2**30:,.1f} GiB"
    return f"{count / 2**20:,.1f} MiB"
