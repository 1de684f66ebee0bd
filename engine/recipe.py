"""Recipes: the applied edits as JSON, read and written as files, replayed exactly.

File form: `{"weightsmith_recipe": 1, "edits": [...]}`. Replaying a recipe on the
same starting model gives the same tensors bit for bit, because every random edit
records the seed it used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EditError
from .io.atomic import atomic_write_bytes
from .io.json_files import read_json

if TYPE_CHECKING:
    from .session import Session

RECIPE_VERSION = 1


def recipe_document(edits: list[dict[str, Any]], **info: Any) -> dict[str, Any]:
    """The file form of a recipe; `info` (source, arch) is stored alongside."""
    document: dict[str, Any] = {"weightsmith_recipe": RECIPE_VERSION}
    document.update({key: value for key, value in info.items() if value is not None})
    document["edits"] = edits
    return document


def parse_recipe(document: Any, where: str = "recipe") -> list[dict[str, Any]]:
    """Check a recipe document (or a bare list of edits) and return its edits."""
    if isinstance(document, list):
        edits = document
    elif isinstance(document, dict):
        version = document.get("weightsmith_recipe")
        if version is None:
            raise EditError(f"{where}: not a recipe (no 'weightsmith_recipe' field)")
        if version != RECIPE_VERSION:
            raise EditError(f"{where}: recipe version {version!r} is not supported "
                            f"(this Weightsmith reads version {RECIPE_VERSION})")
        edits = document.get("edits")
    else:
        raise EditError(f"{where}: expected a JSON object with 'edits'")
    if not isinstance(edits, list) or not all(isinstance(edit, dict) for edit in edits):
        raise EditError(f"{where}: 'edits' must be a list of objects")
    return edits


def read_recipe(path: str | Path) -> list[dict[str, Any]]:
    """Read a recipe file and return its edits.

    Raises
    ------
    FileError : the file is missing or not JSON
    EditError : the JSON is not a recipe
    """
    return parse_recipe(read_json(path), str(path))


def write_recipe(path: str | Path, edits: list[dict[str, Any]], **info: Any) -> None:
    """Write a recipe file atomically."""
    text = json.dumps(recipe_document(edits, **info), indent=2) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def replay(session: Session, edits: list[dict[str, Any]], *,
           trust: bool = False) -> list[Any]:
    """Apply `edits` in order, each as its own step; all or nothing.

    Parameters
    ----------
    trust : allow edits that run code (see `engine.code_needs`); without it a recipe
        with any is refused before its first edit is applied

    Raises
    ------
    CodeNotTrusted : the recipe would run code and `trust` is False (nothing applied)
    EditError : naming the failing edit (`edits[3]: ...`); the steps already applied
        are undone, so the session is as it was
    """
    from .code_needs import recipe_code, require_trust

    require_trust(recipe_code(edits, session), trust)
    results = []
    applied = 0
    try:
        for position, edit in enumerate(edits):
            try:
                results.append(session.apply(edit, trust=trust))
            except EditError as error:
                raise EditError(f"edits[{position}]: {error}") from None
            applied += 1
    except BaseException:
        for _ in range(applied):
            session.undo()
        raise
    return results
