"""A view's subscription to one Session's events, dropped in one call or with the view.

The engine holds a view's bound methods weakly and `SessionEvents.disconnect(owner)`
drops them all; what the engine cannot see is a widget whose C++ object Qt deleted
(with its parent) while Python still holds the wrapper. `SessionListener` disconnects
then too, on the widget's `destroyed` signal, so no view needs a deleted-widget guard.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

if TYPE_CHECKING:
    from engine.events import Listener, SessionEvents
    from engine.session import Session


class SessionListener:
    """Connect `owner`'s listeners to whichever session it shows.

    Parameters
    ----------
    owner : the view; every listener must be one of its methods
    listeners : event name -> method, e.g. `tensors_changed=self._on_tensors_changed`
    """

    def __init__(self, owner: QObject, **listeners: Listener) -> None:
        for name, listener in listeners.items():
            if getattr(listener, "__self__", None) is not owner:
                raise ValueError(f"{name}: a listener must be a method of the owner")
        self._owner = weakref.ref(owner)
        # Functions, not bound methods: the listener must not keep its owner alive.
        self._functions = {name: listener.__func__  # type: ignore[attr-defined]
                           for name, listener in listeners.items()}
        self._events: SessionEvents | None = None
        owner.destroyed.connect(self._on_owner_destroyed)

    def follow(self, session: Session | None) -> None:
        """Listen to `session` (None: to nothing), no longer to the previous one."""
        self.stop()
        owner = self._owner()
        if session is None or owner is None:
            return
        session.events.connect(**{name: function.__get__(owner)
                                  for name, function in self._functions.items()})
        self._events = session.events

    def stop(self) -> None:
        """Disconnect every listener of the owner from the session it follows."""
        owner = self._owner()
        if self._events is not None and owner is not None:
            self._events.disconnect(owner)
        self._events = None

    def _on_owner_destroyed(self, *_: Any) -> None:
        self.stop()
