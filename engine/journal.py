"""The crash journal: enough to rebuild unsaved edits after a crash or a kill.

After every change of the history, the running app writes one small JSON file,
atomically, into `<config dir>/journal/`: how the document was opened (an *open
request*), the recipe of applied edits, and the labels of those edits. A clean exit
removes the file. On the next start, a journal whose process is no longer running
is an orphan: its edits were never saved, and `restore` rebuilds them by opening the
document again and replaying the recipe (every random edit recorded its seed, so the
replay gives the same bits).

Saving adds a *base*: the saved file plus how many recipe edits it already holds, so
a restore after a save replays only what came after it. Bases are tried newest
first; one whose file was overwritten by a later save is dropped.

Open requests are the JSON-ready dicts of `engine.opening` (which opens them, for the
journal and the GUI alike).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EditError, FileError, WeightsmithError
from .io.atomic import atomic_write_bytes
from .progress import Progress

if TYPE_CHECKING:
    from .session import Session

JOURNAL_VERSION = 1
APP_NAME = "weightsmith"


def config_dir() -> Path:
    """The folder of Weightsmith's settings and journal.

    `WEIGHTSMITH_CONFIG_DIR` when set (tests set it), else the platform's place:
    `%APPDATA%\\Weightsmith`, `~/Library/Application Support/Weightsmith`, or
    `$XDG_CONFIG_HOME/weightsmith` (default `~/.config/weightsmith`).
    """
    explicit = os.environ.get("WEIGHTSMITH_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "Weightsmith"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Weightsmith"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / APP_NAME


# ---------------------------------------------------------------------- open requests
def describe_request(request: dict[str, Any] | None) -> str:
    """A short text naming what a request opens ('the demo', 'model.safetensors')."""
    if not request:
        return "a document built in code"
    kind = request.get("kind")
    if kind == "demo":
        return "the demo model"
    if kind == "file":
        name = Path(str(request.get("path", "?"))).name
        return f"{name} as {request['arch']}" if request.get("arch") else name
    if kind == "arch":
        weights = request.get("weights")
        return str(request.get("arch")) + (f" with {Path(weights).name}" if weights else "")
    return "an unknown document"


# ---------------------------------------------------------------------- the journal file
def _digest(edits: list[dict[str, Any]]) -> str:
    text = json.dumps(edits, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Base:
    """A document to reopen and how many recipe edits it already holds."""

    request: dict[str, Any]
    skip: int = 0
    digest: str = ""  # of the recipe's first `skip` edits, to recognise the branch

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request, "skip": self.skip, "digest": self.digest}


@dataclass
class JournalEntry:
    """One journal file as read back."""

    path: Path
    pid: int
    written: float
    bases: list[Base]
    edits: list[dict[str, Any]]
    labels: list[str]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """What the journal would restore, for a dialog."""
        base = self.bases[0].request if self.bases else None
        return describe_request(base)

    def discard(self) -> None:
        """Remove the journal file."""
        with contextlib.suppress(OSError):
            self.path.unlink()


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds that pid
    return True


class Journal:
    """The journal of one running app.

    Parameters
    ----------
    directory : where journal files live (default `config_dir() / "journal"`)
    pid : the process the journal belongs to (default this process)
    """

    def __init__(self, directory: str | Path | None = None, pid: int | None = None) -> None:
        self.directory = Path(directory) if directory is not None else config_dir() / "journal"
        self.pid = os.getpid() if pid is None else pid
        self.path = self.directory / f"session-{self.pid}.json"
        self.bases: list[Base] = []

    # --- the document -------------------------------------------------------------
    def opened(self, request: dict[str, Any] | None) -> None:
        """Start journaling a newly opened document (None: one that cannot be reopened)."""
        self.bases = [Base(request)] if request else []
        self.clear()

    def saved(self, request: dict[str, Any], session: Session) -> None:
        """Record that `session` was saved as `request` (a file request)."""
        edits = session.recipe()
        path = request.get("path")
        # A base whose file was just overwritten no longer holds what it held.
        self.bases = [base for base in self.bases if base.request.get("path") != path]
        self.bases.insert(0, Base(request, len(edits), _digest(edits)))
        self.write(session)

    # --- writing ------------------------------------------------------------------
    def write(self, session: Session) -> None:
        """Write the journal for `session` atomically, or remove it when nothing is unsaved."""
        if not self.bases or not session.is_modified:
            self.clear()
            return
        edits = session.recipe()
        labels = [step.label for step in session.history.applied_steps()]
        document = {
            "weightsmith_journal": JOURNAL_VERSION,
            "pid": self.pid,
            "written": time.time(),
            "bases": [base.to_dict() for base in self.bases],
            "source": _json_ready(session.source),
            "edits": edits,
            "labels": labels,
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            text = json.dumps(document, indent=1, default=str)
            atomic_write_bytes(self.path, text.encode("utf-8"))
        except (OSError, FileError, TypeError, ValueError):
            # The journal is a safety net: failing to write it must never stop an edit.
            return

    def clear(self) -> None:
        """Remove this app's journal file (after a save of everything, or a clean exit)."""
        with contextlib.suppress(OSError):
            self.path.unlink()

    # --- after a crash ------------------------------------------------------------
    def orphans(self) -> list[JournalEntry]:
        """Journals left by processes that are no longer running, newest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("session-*.json"):
            entry = read_entry(path)
            if entry is None:
                continue
            if entry.pid == self.pid or _process_alive(entry.pid):
                continue
            found.append(entry)
        return sorted(found, key=lambda entry: entry.written, reverse=True)


def read_entry(path: str | Path) -> JournalEntry | None:
    """Read a journal file; None when it is unreadable or not a journal."""
    path = Path(path)
    from .io.json_files import JSONProblem, parse_json

    try:
        document = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, JSONProblem):
        return None
    if not isinstance(document, dict) or document.get("weightsmith_journal") != JOURNAL_VERSION:
        return None
    try:
        bases = [Base(dict(item["request"]), int(item.get("skip", 0)), str(item.get("digest", "")))
                 for item in document.get("bases", [])]
        edits = list(document.get("edits", []))
        labels = [str(label) for label in document.get("labels", [])]
        return JournalEntry(path, int(document.get("pid", 0)), float(document.get("written", 0)),
                            bases, edits, labels, dict(document.get("source") or {}))
    except (KeyError, TypeError, ValueError):
        return None


def journal_code(entry: JournalEntry) -> list[str]:
    """Every piece of code restoring `entry` could run (any base, and the edits after it),
    for the trust question; [] when restoring runs nothing beyond torch."""
    from .code_needs import recipe_code, request_code, request_folder

    needs: list[str] = []
    for base in entry.bases:
        needs += [line for line in request_code(base.request) if line not in needs]
        needs += [line for line in recipe_code(entry.edits[base.skip:],
                                               folder=request_folder(base.request))
                  if line not in needs]
    if not entry.bases:
        needs += recipe_code(entry.edits)
    return needs


def restore(entry: JournalEntry, progress: Progress | None = None,
            *, allow_trust: bool = False) -> tuple[Session, dict[str, Any], list[str]]:
    """Rebuild the unsaved document of a journal: reopen a base, replay the edits after it.

    Bases are tried newest first; a base that cannot be opened, or whose recipe
    prefix is not this journal's, is skipped.

    Parameters
    ----------
    allow_trust : run the code a base or the edits need (see `journal_code`; ask the user
        with that list before passing True)

    Returns
    -------
    The session, the open request used, and the labels of the edits replayed.

    Raises
    ------
    EditError : no base could be reopened and replayed (the message says why)
    """
    from .code_needs import recipe_code, request_code, request_folder
    from .opening import open_request
    from .recipe import replay

    problems = []
    for base in entry.bases:
        if base.skip > len(entry.edits) or (
                base.skip and _digest(entry.edits[: base.skip]) != base.digest):
            continue  # saved on another branch of the history
        edits = entry.edits[base.skip:]
        code = request_code(base.request) + recipe_code(
            edits, folder=request_folder(base.request))
        if code and not allow_trust:
            problems.append(f"{describe_request(base.request)} needs trust to restore "
                            f"({code[0]})")
            continue
        try:
            session = open_request(base.request, progress, trust=allow_trust)
            replay(session, edits, trust=allow_trust)
        except WeightsmithError as error:
            problems.append(str(error))
            continue
        labels = entry.labels[base.skip:] if len(entry.labels) == len(entry.edits) else [
            str(edit.get("op")) for edit in edits]
        return session, base.request, labels
    raise EditError("journal: the unsaved edits cannot be restored: "
                    + ("; ".join(problems) if problems else "no document to reopen"))


def _json_ready(value: Any) -> Any:
    from .io.json_files import parse_json

    try:
        return parse_json(json.dumps(value, default=str))
    except (TypeError, ValueError, RecursionError):  # JSONProblem is a ValueError
        return {}
