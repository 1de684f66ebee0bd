"""One way to open a document: files, architectures, the demo and journal requests.

Every document a user works on is opened by `Session.open` (a file or folder: the io
layer reads and returns the document, `engine.io.opening.read_document`, and never makes
a Session) or here, on top of it: `open_model` (an architecture, with weights from a
file or not), `open_demo` (the built-in demo) and `open_request` (the JSON-ready open
requests the GUI and the crash journal use).

Open requests:

- `{"kind": "demo"}`: the built-in demo;
- `{"kind": "file", "path": P, "arch": A|None, "arch_args": {...}|None, "trust": bool,
  "options": {"choice": ..., "strip_prefix": ..., "strict": ...}}`;
- `{"kind": "arch", "arch": A, "arch_args": {...}|None, "weights": P|None}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .allocation import check_build
from .arch import DEFAULT_SEED, build_model
from .document import ModelDocument
from .errors import EditError
from .progress import Progress, report
from .session import Session

#: the options of `Session.open` an open request may carry
OPEN_OPTIONS = frozenset({"choice", "strip_prefix", "strict", "seed"})


def open_model(arch: str, arch_args: dict[str, Any] | None = None,
               weights: str | Path | None = None, *, meta: bool = False,
               seed: int = DEFAULT_SEED, strict: bool = True) -> Session:
    """A Session over a model built from `arch`, with weights from `weights` if given.

    Weights are read the way every file is (`open_path` with the architecture: safely,
    strictly unless `strict=False`, a DDP/compile prefix stripped when the names need
    it). Without weights, `meta=True` builds shapes without data (a listing only).

    Raises
    ------
    ArchError : the architecture cannot be built
    FileError : the weights file is unreadable or does not fit the architecture
    """
    if weights is not None:
        session = Session.open(weights, arch=arch, arch_args=arch_args, seed=seed,
                               strict=strict)
        session.source["weights"] = str(weights)
        return session
    if arch_args and not meta:
        check_build(lambda: build_model(arch, arch_args, seed=seed), None,
                    f"{arch} with these arch-args")
    model = build_model(arch, arch_args, seed=seed, meta=meta)
    return Session(document=ModelDocument(
        model, {"arch": arch, "arch_args": arch_args or None, "weights": None}))


def open_demo() -> Session:
    """A Session over the trained demo model (resources/demo)."""
    from .demo import ARCH_SPEC, WEIGHTS_FILE, demo_model

    return Session(document=ModelDocument(
        demo_model(), {"arch": ARCH_SPEC, "weights": str(WEIGHTS_FILE), "demo": True}))


def open_request(request: dict[str, Any], progress: Progress | None = None, *,
                 trust: bool = False) -> Session:
    """Open the document an open request describes (see the module's docstring).

    `trust` (or the request's own "trust") allows what `Session.open`'s trust allows;
    the caller asked the user first (see `engine.code_needs.request_code`).

    Raises
    ------
    FileError, ArchError : the file or architecture cannot be opened
    EditError : the request itself is malformed
    """
    if not isinstance(request, dict):
        raise EditError("open request: expected an object with a 'kind'")
    kind = request.get("kind")
    report(progress, 0.0, "Opening")
    if kind == "demo":
        session = open_demo()
    elif kind == "file":
        options = request.get("options") or {}
        if not isinstance(options, dict) or set(options) - OPEN_OPTIONS:
            raise EditError(f"open request: options must be an object with only "
                            f"{', '.join(sorted(OPEN_OPTIONS))}")
        session = Session.open(str(request["path"]), arch=request.get("arch"),
                               arch_args=request.get("arch_args"),
                               trust=bool(request.get("trust")) or trust, progress=progress,
                               **options)
    elif kind == "arch":
        session = open_model(str(request["arch"]), request.get("arch_args"),
                             request.get("weights"))
    else:
        raise EditError(f"open request: unknown kind {kind!r}")
    report(progress, 1.0, "Opened")
    return session
