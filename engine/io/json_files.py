"""Read a small JSON file (a recipe, a shard index) with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import FileError


class JSONProblem(ValueError):
    """Text that is not JSON this program reads; the message says why, in one line."""


def parse_json(text: str | bytes, **options: Any) -> Any:
    """`json.loads`, with every way it fails turned into one `JSONProblem` line.

    Beyond malformed text, json can fail on hostile input: a number of more than 4300
    digits (Python's limit on int conversion) or nesting deep enough to exhaust the stack.
    """
    try:
        return json.loads(text, **options)
    except json.JSONDecodeError as error:
        raise JSONProblem(f"line {error.lineno}: {error.msg}") from None
    except RecursionError:
        raise JSONProblem("nested too deeply") from None
    except ValueError as error:
        if "digits" in str(error):
            raise JSONProblem("a number with more digits than Python converts (4300)") from None
        raise JSONProblem(str(error).splitlines()[0] if str(error) else "not JSON") from None


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
        return parse_json(text)
    except JSONProblem as error:
        raise FileError(path, f"not valid JSON ({error})") from None
