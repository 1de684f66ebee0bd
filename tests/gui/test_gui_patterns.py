"""Text typed in the GUI that reaches a regular expression is bounded in time, and a
refusal is one line in the dialog (issue 8's follow-up, class 3).

The regex package writes out counted repeats when it compiles: the 29 characters of
`(?:(?:(?:a{50}){50}){50}){50}` took 19 s and 2.1 GB to compile before any name was
matched (the 2 s deadline covers matching only). Patterns are now measured with `re`'s
parser first. The tree filter takes globs, whose `fnmatch` translation uses atomic
groups (no backtracking): a hostile glob over long names answers at once.
"""

from __future__ import annotations

import time

import pytest
from safetensors.torch import save_file

from engine import EditError, Session
from engine.filtering import FilterResult
from engine.name_patterns import MAX_EXPANDED, compile_pattern, expanded_size
from tests.models import SmallCNN, seeded

NESTED = "(?:(?:(?:a{50}){50}){50}){50}"


def test_nested_counted_repeats_are_refused_before_compiling():
    started = time.monotonic()
    with pytest.raises(EditError, match=r"^rename\.pattern: the counted repeats of .* nest to "
                                        r"6,250,000 items when compiled \(at most 100,000\)"):
        compile_pattern(NESTED, "rename.pattern")
    assert time.monotonic() - started < 1  # measured, not compiled (19 s before)
    assert expanded_size(r"layer(\d+)\.(weight|bias)") < 50
    assert expanded_size("a{100}") == 100
    assert expanded_size("(?:a{1000}){1000}") > MAX_EXPANDED
    with pytest.raises(EditError, match=r"^rename\.pattern: a regex of 6,000 characters"):
        compile_pattern("a" * 6000, "rename.pattern")


def test_a_recipe_rename_with_nested_repeats_is_one_line():
    session = Session(seeded(SmallCNN))
    with pytest.raises(EditError, match=r"^rename\.pattern: the counted repeats"):
        session.apply({"op": "rename", "pattern": NESTED, "replacement": "x"})
    assert session.history.position == 0


def test_the_load_dialog_shows_the_refusal_in_one_line(make_window, dialogs, qtbot, tmp_path):
    window = make_window(Session(seeded(SmallCNN)))
    path = tmp_path / "weights.safetensors"
    save_file({name: tensor.contiguous() for name, tensor in
               seeded(SmallCNN).state_dict().items()}, str(path))
    seen: dict[str, str] = {}

    def first(dialog):
        dialog.set_field("path", str(path))
        dialog.rename_edit.setPlainText(f"{NESTED} -> x")

    def again(dialog):
        messages = [dialog.problem.text()] if not dialog.problem.isHidden() else []
        messages += [field.error_text() for field in dialog.all_fields() if field.error_text()]
        seen["message"] = " | ".join(messages)
        return False

    dialogs.answer(first)
    dialogs.answer(again)
    started = time.monotonic()
    window.edit_actions.load_action.trigger()
    qtbot.waitUntil(lambda: "message" in seen, timeout=10_000)
    assert time.monotonic() - started < 10
    assert seen["message"].startswith("load.rename[0]: the counted repeats of")
    assert "\n" not in seen["message"]
    assert window.session.history.position == 0
    assert dialogs.errors == []


def test_a_hostile_glob_in_the_tree_filter_answers_at_once(make_window, qtbot):
    window = make_window(Session(seeded(SmallCNN)))
    session = window.session
    glob = "*a" * 120 + "*c"
    started = time.monotonic()
    window.filter_edit.setText(glob)
    window.apply_filter()
    assert time.monotonic() - started < 5
    assert FilterResult.build(session, glob).matched == []
    assert FilterResult.build(session, "*a" * 120 + "*").matched == []  # no name has 120 a's
    assert FilterResult.build(session, "features.*.weight").matched
