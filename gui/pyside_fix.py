"""Work around a reference-count bug of some PySide6 builds on CPython 3.11.

PySide6 6.12.0 (abi3 wheels) returns `None` from every void method without
taking a reference (`label.setText(...)`, `painter.drawLine(...)`, ...) and drops
one reference to `True` on every `signal.emit(...)`. On CPython 3.12+ those
objects are immortal and nothing happens; on 3.11 their counts fall by one per
call, and after a few thousand calls the interpreter frees `None` or `True` and
aborts ("Fatal Python error: none_dealloc" / "bool_dealloc").

`install()` checks whether this PySide6 has the bug (one void call and one emit,
counted), and if so gives `None`, `True` and `False` a reference count so large
(2**52) that no session can use it up, which is what CPython 3.12 does for them
("immortal objects"). They are never freed in a correct program, so nothing else
changes. Call it once, before the GUI does anything (`gui.app.main`, the GUI tests
and the benchmarks do).
"""

from __future__ import annotations

import ctypes
import sys

#: references added to each singleton: ~4.5e15 calls before one could run out
_RESERVE = 1 << 52
_installed = False


def has_refcount_bug() -> bool:
    """Whether void methods or emits of this PySide6 lose references to None or True."""
    if sys.version_info >= (3, 12):
        return False  # None, True and False are immortal: the bug is harmless
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        fired = Signal()

    probe = _Probe()
    rounds = 32
    none_before = sys.getrefcount(None)
    true_before = sys.getrefcount(True)
    for _ in range(rounds):
        probe.setObjectName("probe")  # a void method
        probe.fired.emit()
    lost_none = none_before - sys.getrefcount(None)
    lost_true = true_before - sys.getrefcount(True)
    probe.deleteLater()
    return lost_none >= rounds or lost_true >= rounds


def install() -> bool:
    """Make None, True and False safe from the bug; return whether the bug was found."""
    global _installed
    if _installed:
        return True
    if not has_refcount_bug():
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every CPython object, at id(obj).
        count = ctypes.c_ssize_t.from_address(id(singleton))
        count.value += _RESERVE
    _installed = True
    return True
