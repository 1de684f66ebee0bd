"""Plain-Python events: a view subscribes to the Session without any Qt in the engine.

Listeners that are bound methods are held weakly, as psygnal and napari hold them: a
view that goes away stops being called without disconnecting by hand, and
`SessionEvents.disconnect(owner)` drops every listener of one object in one call.
Emission can be blocked (listeners are not called) or paused (emissions are held and
delivered once, merged, when the pause ends).

psygnal was weighed and not taken: it stops at the first listener that raises, where
one broken view here must not leave the others out of date, and its merged pauses need
a reducer per signal that this small class gives in a line.
"""

from __future__ import annotations

import contextlib
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

Listener = Callable[..., Any]


class _Slot:
    """One connected listener: a bound method held weakly, anything else strongly."""

    __slots__ = ("_function", "_owner", "_strong")

    def __init__(self, listener: Listener) -> None:
        if isinstance(listener, types.MethodType):
            self._owner: weakref.ref[Any] | None = weakref.ref(listener.__self__)
            self._function: Any = listener.__func__
            self._strong: Listener | None = None
        else:
            self._owner = None
            self._function = None
            self._strong = listener

    def resolve(self) -> Listener | None:
        """The callable to call, or None when its owner is gone."""
        if self._strong is not None:
            return self._strong
        assert self._owner is not None
        owner = self._owner()
        return None if owner is None else types.MethodType(self._function, owner)

    def is_for(self, listener: Listener) -> bool:
        if self._strong is not None:
            return self._strong == listener
        return (isinstance(listener, types.MethodType) and self._function is listener.__func__
                and self.owned_by(listener.__self__))

    def owned_by(self, owner: object) -> bool:
        if self._owner is not None:
            return self._owner() is owner
        return getattr(self._strong, "__self__", None) is owner


class Event:
    """Listeners called in order with the arguments of `emit`.

    A listener that raises does not stop the others: the error is collected and the
    first one re-raised after every listener ran, so one broken view cannot leave
    another view out of date.

    Parameters
    ----------
    name : the event's name, for messages
    merge : how emissions held by `paused` combine into one argument list, or None to
        deliver each held emission in order (duplicates dropped)
    """

    def __init__(self, name: str,
                 merge: Callable[[list[tuple[Any, ...]]], tuple[Any, ...]] | None = None) -> None:
        self.name = name
        self._slots: list[_Slot] = []
        self._merge = merge
        self._blocked = 0
        self._paused = 0
        self._held: list[tuple[Any, ...]] = []

    def connect(self, listener: Listener) -> Listener:
        """Call `listener` on every emit (a bound method only while its object lives);
        connecting twice has no further effect. Returns `listener`."""
        if not any(slot.is_for(listener) for slot in self._slots):
            self._slots.append(_Slot(listener))
        return listener

    def disconnect(self, listener: Listener) -> None:
        """Stop calling `listener`; a listener that is not connected is ignored."""
        self._slots = [slot for slot in self._slots if not slot.is_for(listener)]

    def disconnect_owner(self, owner: object) -> None:
        """Stop calling every method of `owner`."""
        self._slots = [slot for slot in self._slots if not slot.owned_by(owner)]

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        """Call no listener while the block runs (emissions are dropped)."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold emissions while the block runs; deliver them, merged, when it ends."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            if not self._paused:
                self._release()

    def emit(self, *args: Any) -> None:
        """Call every connected listener with `args` (unless blocked or paused)."""
        if self._blocked:
            return
        if self._paused:
            self._held.append(args)
            return
        first_error: BaseException | None = None
        for slot in list(self._slots):
            listener = slot.resolve()
            if listener is None:
                self._slots = [other for other in self._slots if other is not slot]
                continue
            try:
                listener(*args)
            except Exception as error:  # one view's failure must not starve the others
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error

    def _release(self) -> None:
        held, self._held = self._held, []
        if not held:
            return
        if self._merge is not None:
            self.emit(*self._merge(held))
            return
        previous: tuple[Any, ...] | None = None
        for args in held:
            if args != previous:  # the same emission twice in a row tells nothing new
                self.emit(*args)
            previous = args

    def __len__(self) -> int:
        return sum(slot.resolve() is not None for slot in self._slots)


def _merge_names(held: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """One list of names for several emissions of `tensors_changed` / `flags_changed`."""
    return (sorted({name for (names,) in held for name in names}),)


class SessionEvents:
    """The events a Session emits.

    structure_about_to_change(path) / structure_changed(path)
        The children of the node at dotted `path` ("" is the root) are about to be
        replaced / have been replaced. Always emitted in pairs, with no other event
        between them, so that a Qt model can call begin*/end* around the change.
        They are never paused: a Qt model must hear them around the very mutation.
    tensors_changed(names)
        Values, dtype or shape of these tensors changed (all alias names included).
    flags_changed(names)
        requires_grad, tie state or BatchNorm mode of these tensors or modules changed.
    history_changed()
        The undo/redo stacks, their position or the clean state changed.
    notice(text)
        Something a user should know that is not an error (steps dropped from the history).
    """

    def __init__(self) -> None:
        self.structure_about_to_change = Event("structure_about_to_change")
        self.structure_changed = Event("structure_changed")
        self.tensors_changed = Event("tensors_changed", merge=_merge_names)
        self.flags_changed = Event("flags_changed", merge=_merge_names)
        self.history_changed = Event("history_changed", merge=lambda held: ())
        self.notice = Event("notice")

    def all(self) -> tuple[Event, ...]:
        """Every event, in declaration order."""
        return (self.structure_about_to_change, self.structure_changed, self.tensors_changed,
                self.flags_changed, self.history_changed, self.notice)

    def connect(self, **listeners: Listener) -> None:
        """Connect several listeners by event name: `connect(tensors_changed=self._on_x)`.

        Raises
        ------
        AttributeError : a name is not an event
        """
        for name, listener in listeners.items():
            event = getattr(self, name, None)
            if not isinstance(event, Event):
                raise AttributeError(f"SessionEvents has no event {name!r}")
            event.connect(listener)

    def disconnect(self, owner: object) -> None:
        """Disconnect every listener that is a method of `owner`, from every event."""
        for event in self.all():
            event.disconnect_owner(owner)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold value, flag and history events while the block runs; deliver each once,
        merged, when it ends (structure events are never held)."""
        held = (self.tensors_changed, self.flags_changed, self.history_changed)
        with contextlib.ExitStack() as stack:
            # Entered last-first so they end first-first: values, flags, then history.
            for event in reversed(held):
                stack.enter_context(event.paused())
            yield

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        """Call no listener of any event while the block runs."""
        with contextlib.ExitStack() as stack:
            for event in self.all():
                stack.enter_context(event.blocked())
            yield
