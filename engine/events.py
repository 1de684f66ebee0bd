"""Plain-Python events: a view subscribes to the Session without any Qt in the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Event:
    """A list of callbacks called in order with the arguments of `emit`.

    A callback that raises does not stop the others: the error is collected and the
    first one re-raised after every callback ran, so one broken view cannot leave
    another view out of date.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        """Call `callback` on every emit; connecting twice has no further effect."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling `callback`; a callback that is not connected is ignored."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        """Call every connected callback with `args`."""
        first_error: BaseException | None = None
        for callback in list(self._callbacks):
            try:
                callback(*args)
            except Exception as error:  # one view's failure must not starve the others
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error

    def __len__(self) -> int:
        return len(self._callbacks)


class SessionEvents:
    """The events a Session emits.

    structure_about_to_change(path) / structure_changed(path)
        The children of the node at dotted `path` ("" is the root) are about to be
        replaced / have been replaced. Always emitted in pairs, with no other event
        between them, so that a Qt model can call begin*/end* around the change.
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
        self.tensors_changed = Event("tensors_changed")
        self.flags_changed = Event("flags_changed")
        self.history_changed = Event("history_changed")
        self.notice = Event("notice")
