"""Read a small JSON file (a recipe, a shard index) with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import FileError


def read_json(path: str | Path) -> Any:
    """The parsed contents of a JSON file.

    Raises
    ------
    FileError : missing, unreadable, not UTF-8, or not JSON (with the line of the problem)
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise FileError(path, f"cannot be read ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FileError(path, f"not valid JSON (line {error.lineno}: {error.msg})") from None
