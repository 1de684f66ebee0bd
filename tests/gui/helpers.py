"""Checks shared by the GUI tests: the tree agrees with the engine, round trips are exact."""

from __future__ import annotations

from typing import Any

from engine.tree import TreeIndex
from tests.snapshots import assert_same, snapshot


def assert_tree_agrees(window: Any) -> None:
    """Every row the tree shows matches a freshly built index of the document."""
    model = window.tree_model
    fresh = TreeIndex(window.session)
    for path in model.materialized_paths():
        assert fresh.exists(path), f"the tree shows '{path}', which no longer exists"
        shown = model.info_of(model.index_of(path))
        assert shown == fresh.info(path), f"row '{path}' is stale: {shown} != {fresh.info(path)}"
        node = model._nodes[path]
        if node.children is not None and not node.pending and model.filter is None:
            assert [child.path for child in node.children] == fresh.child_names(path), \
                f"children of '{path}' differ"


def round_trip(window: Any, act: Any, changed: Any = None) -> None:
    """Act in the GUI, check the engine changed; undo and redo through the GUI, check
    the document is restored bit for bit (objects, flags, modes) and the tree agrees."""
    session = window.session
    before = snapshot(session.model)
    steps = session.history.position
    act()
    assert session.history.position == steps + 1, "the action did not make one undo step"
    after = snapshot(session.model)
    if changed is not None:
        changed()
    assert_tree_agrees(window)
    assert window.undo_action.isEnabled()
    assert window.undo_action.text() == f"Undo {session.history.undo_label}"
    window.undo_action.trigger()
    assert_same(before, snapshot(session.model))
    assert_tree_agrees(window)
    window.redo_action.trigger()
    assert_same(after, snapshot(session.model))
    assert_tree_agrees(window)
    window.undo_action.trigger()
    assert_same(before, snapshot(session.model))
