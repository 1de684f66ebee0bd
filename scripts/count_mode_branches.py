"""Count the places that ask "model or checkpoint?" outside the two document classes.

A mode branch is code that tests which kind of document it has, by any of the spellings
the project has used or could: `x.model is None` / `is not None` (and `x.checkpoint`), `if
x.model:`, `hasattr(x, "model")`, `mode == "model"` (or `!=`, or "checkpoint"), `x.mode in
modes`, a row's `kind == "tensor"` (only a checkpoint has such rows), the capability flags
`has_modules` / `is_model` / `is_checkpoint`, and `isinstance(x, ModelDocument)` /
`CheckpointDocument` or `type(x) is ...`. Lines in engine/document/ (the
two classes and their trees) are the classes themselves and are not counted; neither are
comments, docstrings nor tests.

Usage: `python scripts/count_mode_branches.py [--list]` prints the count (and each line).
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("engine", "gui", "cli", "main.py")
EXCLUDED = ("engine/document/",)
PATTERN = re.compile(
    # the document's own attributes, tested for None or for truth
    r"\.(model|checkpoint)\s+is\s+(not\s+)?None"
    r"|\b(if|elif|while|and|or|not)\s+(not\s+)?[\w.]*\.(model|checkpoint)\s*(:|\)|and\b|or\b|$)"
    r"|\bhasattr\([^)]*[\"'](model|checkpoint)[\"']"
    # the mode by name: compared, or looked up in a set of modes
    r"|\bmode\s*[!=]=\s*[\"'](model|checkpoint)[\"']"
    r"|[\"'](model|checkpoint)[\"']\s*[!=]=\s*[\w.]*mode\b"
    r"|\.mode\s+(not\s+)?in\b"
    # a row's kind that only a checkpoint has
    r"|\bkind\s*[!=]=\s*([\"']tensor[\"']|TENSOR\b)"
    # capability flags that stand for "is it a model?"
    r"|\b(has_modules|is_model|is_checkpoint)\b"
    # the document's class
    r"|isinstance\([^)]*\b(Model|Checkpoint)Document\b"
    r"|\btype\([^)]*\)\s+(is|==)\s+(Model|Checkpoint)Document\b"
)


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines that hold code, comments and strings blanked."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    blanked = [list(line) for line in lines]
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            (start_row, start_col), (end_row, end_col) = token.start, token.end
            for row in range(start_row, end_row + 1):
                first = start_col if row == start_row else 0
                last = end_col if row == end_row else len(blanked[row - 1])
                # Keep the quotes of one-line strings: `mode == "model"` must still match.
                if token.type == tokenize.STRING and start_row == end_row:
                    text = token.string
                    if re.fullmatch(r"[\"'](model|checkpoint|tensor)[\"']", text):
                        continue
                for col in range(first, min(last, len(blanked[row - 1]))):
                    blanked[row - 1][col] = " "
    return [(number, "".join(chars)) for number, chars in enumerate(blanked, start=1)]


def mode_branches() -> list[str]:
    """Every counted line, as 'path:line: text'."""
    found = []
    for root in SCANNED:
        base = ROOT / root
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for path in files:
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith(EXCLUDED):
                continue
            original = path.read_text(encoding="utf-8").splitlines()
            for number, text in code_lines(path):
                if PATTERN.search(text):
                    found.append(f"{relative}:{number}: {original[number - 1].strip()}")
    return found


def main() -> int:
    found = mode_branches()
    if "--list" in sys.argv[1:]:
        for line in found:
            print(line)
    print(f"{len(found)} mode branches outside engine/document/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
