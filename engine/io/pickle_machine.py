"""A symbolic pickle machine: what a pickle would import and allocate, without running it.

It executes a pickle's opcodes the way `pickle.Unpickler` does (the same stack, mark
stack and memo, protocol 0 to 5), but over stand-in values: text and numbers keep
their value, everything an unpickler would build by calling code stays opaque. So it
knows exactly which `(module, name)` pairs the real unpickler's `find_class` would be
asked for, in order, however the pickle shuffles strings around (decoys pushed before a
`STACK_GLOBAL`, names fetched back from the memo, duplicated, popped). When the names
cannot be known (a `STACK_GLOBAL` over something a call returned), it says so with
`Undetermined` instead of guessing.

A `CallRules` object sees every call the pickle would make (REDUCE, NEWOBJ, OBJ, INST,
BUILD) with its callee and arguments; `engine.io.pickle_limits` uses that to bound what a
`weights_only` load may allocate.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import copyreg
import mmap
import pickletools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

#: the opcodes whose argument is text the unpickler decodes with the load's encoding
_STRING_OPCODES = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING"})
_UNICODE_OPCODES = frozenset({"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"})
_BYTES_OPCODES = frozenset({"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"})
_NUMBER_OPCODES = frozenset({"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
                             "FLOAT", "BINFLOAT", "NEWTRUE", "NEWFALSE"})


class Undetermined(Exception):
    """What the pickle would import cannot be known without running it (or it is damaged)."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        where = f" (at byte {position})" if position is not None else ""
        super().__init__(f"{reason}{where}")
        self.reason = reason
        self.position = position
        #: the globals the pickle imports before that point (the unpickler imports them)
        self.imports: list[str] = []


class Value:
    """A stand-in for one object on the unpickler's stack.

    Attributes
    ----------
    kind : 'text', 'bytes', 'number', 'none', 'global', 'tuple', 'list', 'dict', 'set',
        'opaque' (built by code: a call's result, a persistent object)
    value : the text, number or dotted global name, when known
    items : the members of a tuple (other containers keep only a count)
    count : how many members a container or how many characters/bytes a string holds
    size : bytes the object may hold, as estimated by the call rules (0 when not tracked)
    """

    __slots__ = ("count", "items", "kind", "size", "value")

    def __init__(self, kind: str, value: Any = None, *, items: tuple[Value, ...] = (),
                 count: int = 0, size: int = 0) -> None:
        self.kind = kind
        self.value = value
        self.items = items
        self.count = count
        self.size = size

    def __repr__(self) -> str:
        return f"Value({self.kind}, {self.value!r}, count={self.count})"


MARK = object()


@dataclass
class PickleRun:
    """What one pickle would do.

    Attributes
    ----------
    imports : every `module.name` that `find_class` would be asked for, in order,
        duplicates removed (names as the unpickler maps them for old protocols)
    end : the offset just past the pickle's STOP
    protocol : the protocol the pickle declared (0 when it declares none)
    value : the stand-in of the object the pickle returns
    """

    imports: list[str] = field(default_factory=list)
    end: int = 0
    protocol: int = 0
    value: Value | None = None


class CallRules:
    """What a call made by the pickle returns; the base class knows nothing about calls.

    Subclasses override `call` to estimate results and raise to stop a scan.
    """

    def call(self, callee: Value, args: tuple[Value, ...], position: int) -> Value:
        """The stand-in for `callee(*args)`."""
        return Value("opaque")

    def persistent(self, pid: Value, position: int) -> Value:
        """The stand-in for `persistent_load(pid)`."""
        return Value("opaque")



def run_pickle(data: bytes | mmap.mmap | BinaryIO, start: int = 0, *,
               rules: CallRules | None = None, torch_mapping: bool = True) -> PickleRun:
    """Execute the pickle at `data[start:]` symbolically (nothing is imported or called).

    Parameters
    ----------
    data : the bytes, a memory map of a file (only the pages the pickle spans are
        read), or a seekable binary file
    rules : sees every call; default: calls return opaque values
    torch_mapping : apply `torch.load`'s own renaming of 'torch.tensor' to 'torch._tensor'

    Raises
    ------
    Undetermined : the names imported cannot be known statically, or the pickle is
        damaged where the real unpickler would fail too
    """
    if not isinstance(data, bytes | bytearray | mmap.mmap):
        data.seek(start)
        data, start = data.read(), 0
    return _Machine(data, start, rules or CallRules(), torch_mapping).run()


class _Machine:
    def __init__(self, data: bytes | mmap.mmap, start: int, rules: CallRules,
                 torch_mapping: bool) -> None:
        self.data = data
        self.start = start
        self.rules = rules
        self.torch_mapping = torch_mapping
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.result = PickleRun()
        self.seen: set[str] = set()
        self.position = start

    # ------------------------------------------------------------------ helpers
    def fail(self, reason: str) -> Undetermined:
        return Undetermined(reason, self.position)

    def pop(self) -> Any:
        if not self.stack:
            raise self.fail("stack underflow")
        value = self.stack.pop()
        if value is MARK:
            raise self.fail("a mark where an object was expected")
        return value

    def top(self) -> Any:
        if not self.stack or self.stack[-1] is MARK:
            raise self.fail("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise self.fail("no mark to pop to")
        items = self.stack
        self.stack = self.metastack.pop()
        return items


    def import_global(self, module: str, name: str) -> Value:
        if self.result.protocol < 3:
            # pickle's fix_imports: Python 2 names are mapped before the import.
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if self.torch_mapping and module == "torch.tensor":
            module = "torch._tensor"  # torch.load's UnpicklerWrapper.find_class
        dotted = f"{module}.{name}"
        if dotted not in self.seen:
            self.seen.add(dotted)
            self.result.imports.append(dotted)
        return Value("global", dotted)

    def global_names(self, lines: list[bytes]) -> tuple[str, str]:
        """The module and name lines of GLOBAL/INST, decoded as the C unpickler decodes
        them (UTF-8, no escapes)."""
        try:
            return lines[0].decode("utf-8"), lines[1].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a global name that is not UTF-8") from None

    def text_value(self, name: str, arg: Any) -> Value:
        if name in _UNICODE_OPCODES:
            return Value("text", str(arg), count=len(arg))
        # STRING/BINSTRING/SHORT_BINSTRING: torch.load decodes them as UTF-8 (its
        # `encoding`); an argument that is not UTF-8 would fail the real load.
        raw = bytes(arg)
        try:
            return Value("text", raw.decode("utf-8"), count=len(raw))
        except UnicodeDecodeError:
            return Value("bytes", count=len(raw))

    def call(self, callee: Any, args: tuple[Value, ...]) -> Value:
        if not isinstance(callee, Value):
            raise self.fail("a call of a mark")
        return self.rules.call(callee, args, self.position)

    # ------------------------------------------------------------------ the loop
    def run(self) -> PickleRun:
        try:
            handlers = _HANDLERS
            for name, arg, position in _ops(self.data, self.start):
                self.position = position
                handler = handlers.get(name)
                if handler is None:
                    raise self.fail(f"unknown opcode {name}")
                handler(self, name, arg, position)
                if name == "STOP":
                    self.result.end = position + 1
                    return self.result
        except Undetermined as error:
            error.imports = list(self.result.imports)
            raise
        except Exception as error:  # the unpickler could not parse it either
            stopped = Undetermined(f"damaged pickle ({str(error).splitlines()[0][:120]})",
                                   self.position)
            stopped.imports = list(self.result.imports)
            raise stopped from None
        stopped = self.fail("the pickle has no STOP")
        stopped.imports = list(self.result.imports)
        raise stopped

    # One handler per family of opcodes, as pickle.Unpickler implements them.
    def _text(self, name: str, arg: Any, position: int) -> None:
        self.stack.append(self.text_value(name, arg))

    def _bytes(self, name: str, arg: Any, position: int) -> None:
        self.stack.append(Value("bytes", count=len(arg)))

    def _number(self, name: str, arg: Any, position: int) -> None:
        if name == "NEWTRUE":
            arg = True
        elif name == "NEWFALSE":
            arg = False
        self.stack.append(Value("number", arg))

    def _none(self, name: str, arg: Any, position: int) -> None:
        self.stack.append(Value("none"))

    def _proto(self, name: str, arg: Any, position: int) -> None:
        if name == "PROTO":
            self.result.protocol = int(arg)

    def _stop(self, name: str, arg: Any, position: int) -> None:
        self.result.value = self.pop()

    def _mark(self, name: str, arg: Any, position: int) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def _pop(self, name: str, arg: Any, position: int) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def _pop_mark(self, name: str, arg: Any, position: int) -> None:
        self.pop_mark()

    def _dup(self, name: str, arg: Any, position: int) -> None:
        self.stack.append(self.top())

    def _put(self, name: str, arg: Any, position: int) -> None:
        if arg < 0:
            raise self.fail("negative memo index")
        self.memo[arg] = self.top()

    def _memoize(self, name: str, arg: Any, position: int) -> None:
        self.memo[len(self.memo)] = self.top()

    def _get(self, name: str, arg: Any, position: int) -> None:
        value = self.memo.get(arg)
        if value is None:
            raise self.fail(f"memo entry {arg} read before it was written")
        self.stack.append(value)

    def _global(self, name: str, arg: Any, position: int) -> None:
        module, attribute = self.global_names(arg)
        found = self.import_global(module, attribute)
        if name == "GLOBAL":
            self.stack.append(found)
        else:  # INST
            args = tuple(self.pop_mark())
            self.stack.append(self.call(found, args))

    def _stack_global(self, name: str, arg: Any, position: int) -> None:
        attribute, module = self.pop(), self.pop()
        if not (module.kind == "text" and attribute.kind == "text"):
            raise self.fail("STACK_GLOBAL over names computed while loading")
        self.stack.append(self.import_global(module.value, attribute.value))

    def _ext(self, name: str, arg: Any, position: int) -> None:
        key = copyreg._inverted_registry.get(int(arg))
        if not key:
            raise self.fail(f"unregistered extension code {arg}")
        self.stack.append(self.import_global(*key))

    def _reduce(self, name: str, arg: Any, position: int) -> None:
        if name == "NEWOBJ_EX":
            self.pop()  # kwargs
        args = self.pop()
        callee = self.pop()
        self.stack.append(self.call(callee, _members(args)))

    def _obj(self, name: str, arg: Any, position: int) -> None:
        items = self.pop_mark()
        if not items:
            raise self.fail("OBJ without a class")
        self.stack.append(self.call(items[0], tuple(items[1:])))

    def _build(self, name: str, arg: Any, position: int) -> None:
        state = self.pop()
        self.rules.call(_BUILD, (self.top(), state), position)

    def _persid(self, name: str, arg: Any, position: int) -> None:
        pid = Value("text", str(arg)) if name == "PERSID" else self.pop()
        self.stack.append(self.rules.persistent(pid, position))

    def _empty(self, name: str, arg: Any, position: int) -> None:
        self.stack.append(Value(_EMPTY_KINDS[name]))

    def _small_tuple(self, name: str, arg: Any, position: int) -> None:
        count = _SMALL_TUPLES[name]
        items = tuple(reversed([self.pop() for _ in range(count)]))
        self.stack.append(Value("tuple", items=items, count=count))

    def _tuple(self, name: str, arg: Any, position: int) -> None:
        items = self.pop_mark()
        self.stack.append(Value("tuple", items=tuple(items), count=len(items)))

    def _collection(self, name: str, arg: Any, position: int) -> None:
        items = self.pop_mark()
        self.stack.append(Value(_EMPTY_KINDS[name], count=len(items)))

    def _append(self, name: str, arg: Any, position: int) -> None:
        self.pop()
        if name == "SETITEM":
            self.pop()
        self.grow(self.top(), 1)

    def _extend(self, name: str, arg: Any, position: int) -> None:
        items = self.pop_mark()
        self.grow(self.top(), len(items))

    def _buffer(self, name: str, arg: Any, position: int) -> None:
        # Out-of-band buffers: torch.load passes none, so the real load fails here.
        raise self.fail("out-of-band buffers (the load would fail)")

    def grow(self, container: Any, count: int) -> None:
        if isinstance(container, Value):
            container.count += count


_BUILD = Value("global", "<build>")
_EMPTY_KINDS = {"EMPTY_TUPLE": "tuple", "EMPTY_LIST": "list", "EMPTY_DICT": "dict",
                "EMPTY_SET": "set", "LIST": "list", "DICT": "dict", "FROZENSET": "set"}
_SMALL_TUPLES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_HANDLERS: dict[str, Any] = {
    **dict.fromkeys(_UNICODE_OPCODES | _STRING_OPCODES, _Machine._text),
    **dict.fromkeys(_BYTES_OPCODES, _Machine._bytes),
    **dict.fromkeys(_NUMBER_OPCODES, _Machine._number),
    "NONE": _Machine._none, "PROTO": _Machine._proto, "FRAME": _Machine._proto,
    "STOP": _Machine._stop, "MARK": _Machine._mark, "POP": _Machine._pop,
    "POP_MARK": _Machine._pop_mark, "DUP": _Machine._dup,
    **dict.fromkeys(("PUT", "BINPUT", "LONG_BINPUT"), _Machine._put),
    "MEMOIZE": _Machine._memoize,
    **dict.fromkeys(("GET", "BINGET", "LONG_BINGET"), _Machine._get),
    "GLOBAL": _Machine._global, "INST": _Machine._global,
    "STACK_GLOBAL": _Machine._stack_global,
    **dict.fromkeys(("EXT1", "EXT2", "EXT4"), _Machine._ext),
    **dict.fromkeys(("REDUCE", "NEWOBJ", "NEWOBJ_EX"), _Machine._reduce),
    "OBJ": _Machine._obj, "BUILD": _Machine._build,
    "PERSID": _Machine._persid, "BINPERSID": _Machine._persid,
    "EMPTY_TUPLE": _Machine._empty, "EMPTY_LIST": _Machine._empty,
    "EMPTY_DICT": _Machine._empty, "EMPTY_SET": _Machine._empty,
    **dict.fromkeys(("TUPLE1", "TUPLE2", "TUPLE3"), _Machine._small_tuple),
    "TUPLE": _Machine._tuple,
    **dict.fromkeys(("LIST", "DICT", "FROZENSET"), _Machine._collection),
    "APPEND": _Machine._append, "SETITEM": _Machine._append,
    **dict.fromkeys(("APPENDS", "SETITEMS", "ADDITEMS"), _Machine._extend),
    "NEXT_BUFFER": _Machine._buffer, "READONLY_BUFFER": _Machine._buffer,
}


def _members(args: Any) -> tuple[Value, ...]:
    """The arguments of a call: the members of a tuple, else the one opaque value."""
    if isinstance(args, Value) and args.kind == "tuple":
        return args.items
    return (args,) if isinstance(args, Value) else ()


# ---------------------------------------------------------------------- opcode reader
_CODES = {op.code.encode("latin-1")[0]: op.name for op in pickletools.opcodes}
_FIXED = {"BININT": ("<i", 4), "BININT1": ("<B", 1), "BININT2": ("<H", 2),
          "BINFLOAT": (">d", 8), "BINGET": ("<B", 1), "LONG_BINGET": ("<I", 4),
          "BINPUT": ("<B", 1), "LONG_BINPUT": ("<I", 4), "EXT1": ("<B", 1),
          "EXT2": ("<H", 2), "EXT4": ("<i", 4), "PROTO": ("<B", 1), "FRAME": ("<Q", 8)}
_COUNTED = {"SHORT_BINUNICODE": ("<B", 1), "BINUNICODE": ("<I", 4), "BINUNICODE8": ("<Q", 8),
            "SHORT_BINSTRING": ("<B", 1), "BINSTRING": ("<i", 4), "SHORT_BINBYTES": ("<B", 1),
            "BINBYTES": ("<I", 4), "BINBYTES8": ("<Q", 8), "BYTEARRAY8": ("<Q", 8)}
_LINES = frozenset({"INT", "LONG", "STRING", "UNICODE", "FLOAT", "GET", "PUT", "PERSID"})
_TWO_LINES = frozenset({"GLOBAL", "INST"})


def _ops(data: bytes | mmap.mmap, start: int) -> Iterator[tuple[str, Any, int]]:
    """(name, argument, position) of each opcode from `start` to STOP, as the unpickler
    reads them; a faster pickletools.genops that keeps raw bytes where decoding differs."""
    position = start
    end = len(data)
    unpack_from = struct.unpack_from
    while position < end:
        name = _CODES.get(data[position])
        if name is None:
            raise ValueError(f"unknown opcode byte 0x{data[position]:02x}")
        at = position
        position += 1
        arg: Any = None
        if name in _FIXED:
            fmt, size = _FIXED[name]
            if position + size > end:
                raise ValueError(f"{name} runs past the end")
            arg = unpack_from(fmt, data, position)[0]
            position += size
        elif name in _COUNTED:
            fmt, size = _COUNTED[name]
            if position + size > end:
                raise ValueError(f"{name} runs past the end")
            count = unpack_from(fmt, data, position)[0]
            position += size
            if count < 0 or position + count > end:
                raise ValueError(f"{name} of {count} bytes runs past the end")
            raw = data[position:position + count]
            position += count
            arg = raw.decode("utf-8", "surrogatepass") if name.endswith("UNICODE") or \
                name == "BINUNICODE8" else raw
        elif name in ("LONG1", "LONG4"):
            size = 1 if name == "LONG1" else 4
            if position + size > end:
                raise ValueError(f"{name} runs past the end")
            count = unpack_from("<B" if size == 1 else "<i", data, position)[0]
            position += size
            if count < 0 or position + count > end:
                raise ValueError(f"{name} runs past the end")
            arg = int.from_bytes(data[position:position + count], "little", signed=True)
            position += count
        elif name in _LINES or name in _TWO_LINES:
            lines = []
            for _ in range(2 if name in _TWO_LINES else 1):
                newline = data.find(b"\n", position)
                if newline < 0:
                    raise ValueError(f"{name} without its newline")
                lines.append(data[position:newline])
                position = newline + 1
            arg = lines if name in _TWO_LINES else _line_value(name, lines[0])
        yield name, arg, at
        if name == "STOP":
            return
    raise ValueError("the pickle has no STOP")


def _line_value(name: str, line: bytes) -> Any:
    if name == "INT":
        return {b"00": False, b"01": True}.get(line) if line in (b"00", b"01") else int(line)
    if name == "LONG":
        return int(line.rstrip(b"L"))
    if name == "FLOAT":
        return float(line)
    if name in ("GET", "PUT"):
        return int(line)
    if name == "UNICODE":
        return line.decode("raw-unicode-escape")
    if name == "STRING":
        if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
            raise ValueError("the STRING argument must be quoted")
        return codecs.escape_decode(line[1:-1])[0]
    return line.decode("ascii")  # PERSID
