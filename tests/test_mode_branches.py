"""At most 10 places outside the two document classes ask "model or checkpoint?", counted
by scripts/count_mode_branches.py, whose every spelling is checked here so that the count
cannot shrink by a narrowed pattern."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the issue's bound: at most this many mode branches outside engine/document/
LIMIT = 10


def _counter():
    spec = importlib.util.spec_from_file_location("count_mode_branches",
                                                  ROOT / "scripts" / "count_mode_branches.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


COUNTED = [
    "if session.model is None:",
    "if doc.checkpoint is not None:",
    "if not session.model:",
    "ok = flag and doc.checkpoint",
    'if hasattr(doc, "model"):',
    'if session.mode == "checkpoint":',
    "if mode != 'model':",
    'if "model" == document.mode:',
    "if doc.mode in edit.modes:",
    "if doc.mode not in self.modes:",
    'value = None if row.kind == "tensor" else row.requires_grad',
    "if row.kind != TENSOR:",
    "if session.document.has_modules:",
    "if doc.is_model:",
    "if isinstance(doc, ModelDocument):",
    "if isinstance(doc, (Document, CheckpointDocument)):",
    "if type(doc) is ModelDocument:",
]
NOT_COUNTED = [
    "model = session.document.model",
    'mode = "model"  # mode == "checkpoint" in a comment',
    'text = "session.model is None"',
    "if summary.mode is not None:",
    'if kind == "parameter":',
    'label = f"Mode: {session.mode}"',
]


@pytest.mark.parametrize("line", COUNTED)
def test_every_spelling_is_counted(tmp_path, line):
    counter = _counter()
    path = tmp_path / "sample.py"
    path.write_text(f"def f():\n    {line}\n        pass\n")
    assert [number for number, text in counter.code_lines(path)
            if counter.PATTERN.search(text)] == [2]


@pytest.mark.parametrize("line", NOT_COUNTED)
def test_code_that_asks_nothing_is_not_counted(tmp_path, line):
    counter = _counter()
    path = tmp_path / "sample.py"
    path.write_text(f'def f():\n    """if session.model is None: a docstring"""\n    {line}\n')
    assert not [number for number, text in counter.code_lines(path)
                if counter.PATTERN.search(text)]


def test_at_most_ten_places_outside_the_documents_ask_for_the_mode():
    found = _counter().mode_branches()
    assert len(found) <= LIMIT, "\n".join(found)
    assert not [line for line in found if line.startswith("engine/edits/")
                and not line.startswith("engine/edits/base.py")], "an edit asks for the mode"
