"""Write the field reference of docs/recipes.md from the edits' declared fields.

Usage: `python scripts/make_recipe_docs.py` (tests/engine/test_schema.py checks the file).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.edits import reference  # noqa: E402

DOC = ROOT / "docs" / "recipes.md"


def main() -> int:
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(reference.with_reference(text), encoding="utf-8")
    print(f"wrote the field reference of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
