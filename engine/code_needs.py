"""What code an edit, a recipe, an architecture or an open request would run, asked
without running anything.

A recipe, a crash journal and a checkpoint are data from somewhere else: a recipe that
names an architecture in a `.py` file, a Hugging Face folder with custom code, or
`trust_remote_code` would run that code when replayed. Every such piece of code is
described here in one line that names the field and the code (`attach.arch: imports and
runs /models/net.py (class Net)`), and every route that would run it (`Session.apply`,
`engine.recipe.replay`, `engine.journal.restore`, the GUI) asks first and refuses
without explicit trust: `--trust` in the CLI, `trust=True` in the API, the trust dialog
in the GUI (which lists exactly these lines).

What a person types themselves (an `--arch` on the command line, an `arch` passed to
`Session.open` in their own code) is their consent and is not asked about here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .arch_code import TIMM_CODE_ARGS, UNREADABLE, arch_code
from .errors import EditError

__all__ = ["TIMM_CODE_ARGS", "CodeNotTrusted", "arch_code", "edit_code", "recipe_code",
           "request_code", "request_folder", "require_trust"]

#: at most this many pieces of code are named in a one-line message
LISTED = 3


class CodeNotTrusted(EditError):
    """Something would run code and trust was not given; `code` lists what would run."""

    def __init__(self, code: list[str], where: str = "") -> None:
        self.code = list(code)
        shown = "; ".join(self.code[:LISTED])
        if len(self.code) > LISTED:
            shown += f"; and {len(self.code) - LISTED} more"
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{shown}: refused without trust (--trust in the CLI, "
                         "trust=True in the API) because it runs code; trust it only if you "
                         "trust where it came from")


def require_trust(code: list[str], trust: bool, where: str = "") -> None:
    """Raise CodeNotTrusted when `code` is not empty and `trust` is False."""
    if code and not trust:
        raise CodeNotTrusted(code, where)


def edit_code(spec: Any, session: Any = None) -> list[str]:
    """The code one edit (a dict or an Edit) would run; [] for a malformed spec (its own
    checks reject it when applied)."""
    from .edits import build_edit

    try:
        edit = build_edit(spec)
    except EditError:
        return []
    return edit.code_to_run(session)


def recipe_code(edits: list[Any], session: Any = None, *,
                folder: Path | None = None) -> list[str]:
    """The code replaying `edits` would run, each line prefixed with `edits[i]: `.

    Parameters
    ----------
    session : the document the edits would be applied to (its opened folder is what an
        `hf` architecture means)
    folder : that folder, when there is no session yet (a journal not reopened)
    """
    context: Any = session
    if context is None and folder is not None:
        context = _OpenedFolder({"folder": str(folder)})
    needs = []
    for position, spec in enumerate(edits):
        needs += [f"edits[{position}]: {line}" for line in edit_code(spec, context)]
    return needs


class _OpenedFolder:
    """Stands in for a session where only its `source["folder"]` is asked."""

    def __init__(self, source: dict[str, Any]) -> None:
        self.source = source


def request_folder(request: Any) -> Path | None:
    """The folder an open request opens (what `hf` means for edits applied after it)."""
    if not isinstance(request, dict) or request.get("kind") != "file" or not request.get("path"):
        return None
    path = Path(str(request["path"]))
    return path if path.is_dir() else None


def request_code(request: Any) -> list[str]:
    """The code reopening an open request (see `engine.journal`) would run."""
    if not isinstance(request, dict):
        return []
    needs = []
    kind = request.get("kind")
    if kind == "file" and request.get("trust"):
        from .io.formats import detect
        from .io.trust import code_listing

        path = request.get("path")
        try:
            listing = code_listing(detect(str(path)).path)
        except UNREADABLE:
            listing = None
        if listing is not None and (listing.unsafe or listing.undetermined):
            names = ", ".join(listing.unsafe[:LISTED]) or "code"
            needs.append(f"{path}: loading it imports {names}"
                         + (f" (and more that cannot be determined: {listing.undetermined})"
                            if listing.undetermined else ""))
        else:
            needs.append(f"{path}: was opened with trust (it may run code when loaded)")
    if kind in ("file", "arch"):
        path = request.get("path")
        folder = Path(str(path)) if kind == "file" and path else None
        if folder is not None and not folder.is_dir():
            folder = folder.parent
        needs += arch_code(request.get("arch"), request.get("arch_args"), folder=folder)
    return needs


