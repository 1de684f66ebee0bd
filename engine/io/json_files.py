"""Read a small JSON file (a recipe, a shard index) with errors that name the file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
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


_SPACE = re.compile(r"[ \t\n\r]*")


def iter_members(text: str) -> Iterator[tuple[str, Any]]:
    """The members of the JSON object `text`, one (name, value) at a time, in order.

    What `parse_json(text)` would give as a dict, without ever holding it: a safetensors
    header of a million entries is turned into its tensors one entry at a time, and each
    parsed entry is freed before the next is read. Names given twice are yielded twice
    (the caller decides). Fails as `parse_json` fails, with one `JSONProblem` line.
    """
    scan = json.JSONDecoder().scan_once
    index = 0

    def problem(message: str) -> JSONProblem:
        return JSONProblem(f"line {text.count(chr(10), 0, index) + 1}: {message}")

    def skip(position: int) -> int:
        return _SPACE.match(text, position).end()  # type: ignore[union-attr]

    try:
        index = skip(0)
        if text[index:index + 1] != "{":
            raise problem("Expecting a JSON object")
        index = skip(index + 1)
        if text[index:index + 1] == "}":
            index = skip(index + 1)
        else:
            while True:
                if text[index:index + 1] != '"':
                    raise problem("Expecting property name enclosed in double quotes")
                name, index = json.decoder.scanstring(text, index + 1)
                index = skip(index)
                if text[index:index + 1] != ":":
                    raise problem("Expecting ':' delimiter")
                index = skip(index + 1)
                try:
                    value, index = scan(text, index)
                except StopIteration:
                    raise problem("Expecting value") from None
                yield name, value
                index = skip(index)
                delimiter = text[index:index + 1]
                index = skip(index + 1)
                if delimiter == "}":
                    break
                if delimiter != ",":
                    raise problem("Expecting ',' delimiter")
        if index < len(text):
            raise problem("Extra data")
    except json.JSONDecodeError as error:
        raise JSONProblem(f"line {error.lineno}: {error.msg}") from None
    except RecursionError:
        raise JSONProblem("nested too deeply") from None
    except ValueError as error:
        if isinstance(error, JSONProblem):
            raise
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
