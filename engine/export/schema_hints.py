"""Cache the type hints torch.export's deserializer looks up while it loads a program.

`torch.export.load` turns the program's JSON into torch's schema dataclasses with
`torch._export.serde.serialize._dict_to_dataclass`, which calls
`typing.get_type_hints(cls, globalns=vars(schema))` once per JSON object: about 10,000
calls for resnet50, the same few dozen classes every time, and a third of the load's
time. The hints of a class whose definition does not change are the same on every
call, so for the duration of a load the deserializer's module sees a `typing` whose
`get_type_hints` remembers them (a cache that lives as long as the block). Nothing
else changes: the same deserializer reads the same file into the same program.
Nested or concurrent blocks share one patch, and the module's own `typing` is put
back when the last of them ends.
"""

from __future__ import annotations

import threading
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_depth = 0
_original: Any = None


def _caching_typing(original: types.ModuleType) -> types.ModuleType:
    """A copy of the `typing` module whose get_type_hints caches plain class lookups."""
    cache: dict[tuple[Any, int], dict[str, Any]] = {}
    lookup = original.get_type_hints

    def get_type_hints(obj: Any, globalns: dict[str, Any] | None = None,
                       localns: dict[str, Any] | None = None,
                       include_extras: bool = False) -> dict[str, Any]:
        if localns is not None or include_extras or not isinstance(obj, type):
            return lookup(obj, globalns, localns, include_extras)
        key = (obj, id(globalns))
        hints = cache.get(key)
        if hints is None:
            hints = cache[key] = lookup(obj, globalns)
        return dict(hints)  # a copy: a caller may change what it gets

    proxy = types.ModuleType(original.__name__, original.__doc__)
    proxy.__dict__.update(original.__dict__)
    proxy.get_type_hints = get_type_hints  # type: ignore[attr-defined]
    return proxy


@contextmanager
def cached_schema_hints() -> Iterator[None]:
    """Let torch.export's deserializer reuse the type hints of its schema classes."""
    global _depth, _original
    from torch._export.serde import serialize

    with _lock:
        if _depth == 0:
            _original = serialize.typing
            serialize.typing = _caching_typing(typing)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                serialize.typing = _original
                _original = None
