"""Events: weakly held listeners, one-call disconnect, blocking and merged pauses."""

from __future__ import annotations

import gc

import pytest

from engine.events import Event, SessionEvents


class _View:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def on_tensors(self, names: list[str]) -> None:
        self.seen.append(("tensors", names))

    def on_history(self) -> None:
        self.seen.append(("history", None))


def test_a_bound_method_is_held_weakly():
    event = Event("e")
    view = _View()
    event.connect(view.on_tensors)
    event.emit(["a"])
    assert view.seen == [("tensors", ["a"])]
    assert len(event) == 1
    del view
    gc.collect()
    assert len(event) == 0
    event.emit(["b"])  # a collected listener is skipped and forgotten


def test_functions_and_lambdas_are_held_strongly():
    event = Event("e")
    seen: list[object] = []
    event.connect(lambda names: seen.append(names))
    gc.collect()
    event.emit(["x"])
    assert seen == [["x"]]


def test_disconnect_owner_drops_every_listener_of_it_in_one_call():
    events = SessionEvents()
    view, other = _View(), _View()
    events.connect(tensors_changed=view.on_tensors, history_changed=view.on_history)
    events.connect(tensors_changed=other.on_tensors)
    events.disconnect(view)
    events.tensors_changed.emit(["a"])
    events.history_changed.emit()
    assert view.seen == []
    assert other.seen == [("tensors", ["a"])]


def test_connect_rejects_an_unknown_event_name():
    with pytest.raises(AttributeError, match="no event"):
        SessionEvents().connect(tensor_changed=print)


def test_connecting_twice_calls_once():
    event = Event("e")
    view = _View()
    event.connect(view.on_tensors)
    event.connect(view.on_tensors)
    event.emit(["a"])
    assert view.seen == [("tensors", ["a"])]


def test_blocked_drops_emissions():
    events = SessionEvents()
    view = _View()
    events.connect(tensors_changed=view.on_tensors)
    with events.blocked():
        events.tensors_changed.emit(["a"])
    events.tensors_changed.emit(["b"])
    assert view.seen == [("tensors", ["b"])]


def test_paused_delivers_once_merged_and_never_holds_structure_events():
    events = SessionEvents()
    view = _View()
    order: list[str] = []
    events.connect(tensors_changed=view.on_tensors, history_changed=view.on_history)
    events.structure_changed.connect(order.append)
    with events.paused():
        events.tensors_changed.emit(["b", "a"])
        events.tensors_changed.emit(["c", "a"])
        events.history_changed.emit()
        events.history_changed.emit()
        events.structure_changed.emit("layer1")
        assert view.seen == []
        assert order == ["layer1"]
    assert view.seen == [("tensors", ["a", "b", "c"]), ("history", None)]


def test_a_failing_listener_does_not_starve_the_others():
    event = Event("e")
    seen: list[object] = []

    def broken(names: list[str]) -> None:
        raise ValueError("broken view")

    event.connect(broken)
    event.connect(seen.append)
    with pytest.raises(ValueError, match="broken view"):
        event.emit(["a"])
    assert seen == [["a"]]
