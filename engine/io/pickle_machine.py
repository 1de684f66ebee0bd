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
import copyreg
import io
import pickletools
from dataclasses import dataclass, field
from typing import Any

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

    def created(self, value: Value, position: int) -> None:
        """Called for every object the pickle creates (literals and containers)."""


def run_pickle(data: bytes, start: int = 0, *, rules: CallRules | None = None,
               torch_mapping: bool = True) -> PickleRun:
    """Execute the pickle at `data[start:]` symbolically (nothing is imported or called).

    Parameters
    ----------
    rules : sees every call; default: calls return opaque values
    torch_mapping : apply `torch.load`'s own renaming of 'torch.tensor' to 'torch._tensor'

    Raises
    ------
    Undetermined : the names imported cannot be known statically, or the pickle is
        damaged where the real unpickler would fail too
    """
    return _Machine(data, start, rules or CallRules(), torch_mapping).run()


class _Machine:
    def __init__(self, data: bytes, start: int, rules: CallRules, torch_mapping: bool) -> None:
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

    def push(self, value: Value) -> None:
        self.rules.created(value, self.position)
        self.stack.append(value)

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

    def raw_line_pair(self, position: int) -> tuple[str, str]:
        """The two newline-ended lines after the opcode at `position`, decoded as the C
        unpickler decodes them (UTF-8, no escapes)."""
        end1 = self.data.find(b"\n", position + 1)
        end2 = self.data.find(b"\n", end1 + 1) if end1 >= 0 else -1
        if end1 < 0 or end2 < 0:
            raise self.fail("a global without its two lines")
        try:
            return (self.data[position + 1:end1].decode("utf-8"),
                    self.data[end1 + 1:end2].decode("utf-8"))
        except UnicodeDecodeError:
            raise self.fail("a global name that is not UTF-8") from None

    def text_value(self, name: str, arg: Any) -> Value:
        if name in _UNICODE_OPCODES:
            return Value("text", str(arg), count=len(arg))
        # STRING/BINSTRING/SHORT_BINSTRING: torch.load decodes them as UTF-8 (its
        # `encoding`); pickletools gave latin-1, which maps back to the raw bytes.
        raw = arg.encode("latin-1") if isinstance(arg, str) else bytes(arg)
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
        stream = io.BytesIO(self.data)
        stream.seek(self.start)
        try:
            for opcode, arg, position in pickletools.genops(stream):
                self.position = position
                self.step(opcode.name, arg, position)
                if opcode.name == "STOP":
                    self.result.end = stream.tell()
                    return self.result
        except Undetermined as error:
            error.imports = list(self.result.imports)
            raise
        except Exception as error:  # pickletools cannot parse it: neither can we
            stopped = Undetermined(f"damaged pickle ({str(error).splitlines()[0][:120]})",
                                   self.position)
            stopped.imports = list(self.result.imports)
            raise stopped from None
        stopped = self.fail("the pickle has no STOP")
        stopped.imports = list(self.result.imports)
        raise stopped

    def step(self, name: str, arg: Any, position: int) -> None:
        if name in _UNICODE_OPCODES or name in _STRING_OPCODES:
            self.push(self.text_value(name, arg))
        elif name in _BYTES_OPCODES:
            self.push(Value("bytes", count=len(arg)))
        elif name in _NUMBER_OPCODES:
            self.push(Value("number", arg))
        elif name == "NONE":
            self.push(Value("none"))
        elif name in ("PROTO", "FRAME"):
            if name == "PROTO":
                self.result.protocol = int(arg)
        elif name == "STOP":
            self.result.value = self.pop()
        elif name == "MARK":
            self.metastack.append(self.stack)
            self.stack = []
        elif name == "POP":
            if self.stack:
                self.stack.pop()
            else:
                self.pop_mark()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            self.stack.append(self.top())
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if int(arg) < 0:
                raise self.fail("negative memo index")
            self.memo[int(arg)] = self.top()
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in self.memo:
                raise self.fail(f"memo entry {arg} read before it was written")
            self.stack.append(self.memo[int(arg)])
        elif name in ("GLOBAL", "INST"):
            module, attribute = self.raw_line_pair(position)
            found = self.import_global(module, attribute)
            if name == "GLOBAL":
                self.stack.append(found)
            else:
                args = tuple(self.pop_mark())
                self.stack.append(self.call(found, args))
        elif name == "STACK_GLOBAL":
            attribute, module = self.pop(), self.pop()
            if not all(isinstance(v, Value) and v.kind == "text" for v in (module, attribute)):
                raise self.fail("STACK_GLOBAL over names computed while loading")
            self.stack.append(self.import_global(module.value, attribute.value))
        elif name in ("EXT1", "EXT2", "EXT4"):
            key = copyreg._inverted_registry.get(int(arg))
            if not key:
                raise self.fail(f"unregistered extension code {arg}")
            self.stack.append(self.import_global(*key))
        elif name == "REDUCE":
            args = self.pop()
            callee = self.pop()
            self.stack.append(self.call(callee, _members(args)))
        elif name == "NEWOBJ":
            args = self.pop()
            cls = self.pop()
            self.stack.append(self.call(cls, _members(args)))
        elif name == "NEWOBJ_EX":
            self.pop()  # kwargs
            args = self.pop()
            cls = self.pop()
            self.stack.append(self.call(cls, _members(args)))
        elif name == "OBJ":
            items = self.pop_mark()
            if not items:
                raise self.fail("OBJ without a class")
            self.stack.append(self.call(items[0], tuple(items[1:])))
        elif name == "BUILD":
            state = self.pop()
            inst = self.top()
            self.rules.call(Value("global", "<build>"), (inst, state), position)
        elif name in ("PERSID", "BINPERSID"):
            pid = Value("text", str(arg)) if name == "PERSID" else self.pop()
            self.stack.append(self.rules.persistent(pid, position))
        elif name == "EMPTY_TUPLE":
            self.push(Value("tuple"))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = tuple(reversed([self.pop() for _ in range(count)]))
            self.push(Value("tuple", items=items, count=count))
        elif name == "TUPLE":
            items = tuple(self.pop_mark())
            self.push(Value("tuple", items=items, count=len(items)))
        elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
            self.push(Value(name.removeprefix("EMPTY_").lower()))
        elif name in ("LIST", "DICT", "FROZENSET"):
            items = self.pop_mark()
            kind = {"LIST": "list", "DICT": "dict", "FROZENSET": "set"}[name]
            self.push(Value(kind, count=len(items)))
        elif name == "APPEND":
            self.pop()
            self.grow(self.top(), 1)
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            items = self.pop_mark()
            self.grow(self.top(), len(items))
        elif name == "SETITEM":
            self.pop()
            self.pop()
            self.grow(self.top(), 1)
        elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
            # Out-of-band buffers: torch.load passes none, so the real load fails here.
            raise self.fail("out-of-band buffers (the load would fail)")
        else:
            raise self.fail(f"unknown opcode {name}")

    def grow(self, container: Any, count: int) -> None:
        if isinstance(container, Value):
            container.count += count
            self.rules.created(Value("grow", count=count), self.position)


def _members(args: Any) -> tuple[Value, ...]:
    """The arguments of a call: the members of a tuple, else the one opaque value."""
    if isinstance(args, Value) and args.kind == "tuple":
        return args.items
    return (args,) if isinstance(args, Value) else ()
