"""What loading a pickle-based file would run: the globals it imports, for the trust dialog.

Nothing here unpickles anything: the pickles are disassembled statically. The GUI
calls `unsafe_globals(path)` to list, in its confirmation dialog, the code a file
would import before the user decides to open it with `trust=True`.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

import torch

from .torch_files import is_torchscript, is_zip_checkpoint

#: at most this many names are put in a one-line error message
LISTED = 4
#: how much of a legacy-format file is scanned for its leading pickles
LEGACY_SCAN_BYTES = 64 * 2**20


def unsafe_globals(path: str | Path) -> list[str]:
    """The globals a pickle-based checkpoint imports beyond what `weights_only` allows.

    Parameters
    ----------
    path : a .pt/.pth/.bin/.ckpt file (zip or legacy format) or a TorchScript archive

    Returns
    -------
    Sorted dotted names, e.g. `['my_project.models.Net', 'posix.system']`; for a
    TorchScript archive, `torchscript:<module>` for each code file it carries. An empty
    list means `weights_only=True` can load it. `'<unreadable>'` is listed when the
    pickle cannot be disassembled (a damaged or crafted file).
    """
    path = Path(path)
    if is_torchscript(path):
        return _torchscript_code(path)
    if is_zip_checkpoint(path):
        try:
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except Exception:
            # torch's scanner knows only the opcodes torch.save writes; a hand-made
            # pickle (protocol 4+) still has to be listed, so disassemble it here.
            data = _zip_pickle(path)
            return _filtered(scan_globals(data)) if data is not None else ["<unreadable>"]
    try:
        with open(path, "rb") as handle:
            data = handle.read(LEGACY_SCAN_BYTES)
    except OSError:
        return ["<unreadable>"]
    return _filtered(scan_globals(data, pickles=4))


def refusal_message(path: str | Path) -> str:
    """The one-line message for a file that `weights_only=True` refuses."""
    names = unsafe_globals(path)
    kind = ("a TorchScript archive (it carries code)" if names and names[0].startswith(
        "torchscript:") else "loading it would import and run code from the file")
    listed = ", ".join(names[:LISTED])
    if len(names) > LISTED:
        listed += f" and {len(names) - LISTED} more"
    needs = f" (it imports {listed})" if names else ""
    return (f"refused: {kind}{needs}; open it with trust (--trust) only if you trust "
            "where it came from")


def scan_globals(data: bytes, pickles: int = 1) -> set[str]:
    """Every global the first `pickles` pickles in `data` import (GLOBAL, INST, STACK_GLOBAL)."""
    found: set[str] = set()
    stream = io.BytesIO(data)
    for _ in range(pickles):
        if stream.tell() >= len(data):
            break
        try:
            _scan_one(stream, found)
        except Exception:  # damaged or crafted pickle: say so, never guess it is safe
            found.add("<unreadable>")
            break
    return found


def _scan_one(stream: io.BytesIO, found: set[str]) -> None:
    strings: list[str] = []
    memo: dict[int, str | None] = {}
    last_string: str | None = None
    for opcode, arg, _position in pickletools.genops(stream):
        name = opcode.name
        pushed: str | None = None
        if name in ("GLOBAL", "INST"):
            found.add(str(arg).replace(" ", "."))
        elif name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}" if len(strings) >= 2 else "<unknown>")
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                      "SHORT_BINSTRING", "BINSTRING", "STRING"):
            pushed = str(arg)
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = last_string
        elif name == "MEMOIZE":
            memo[len(memo)] = last_string
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            pushed = memo.get(int(arg))
        if pushed is not None:
            strings.append(pushed)
        if name not in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            last_string = pushed


def _filtered(names: set[str]) -> list[str]:
    from torch import _weights_only_unpickler as unpickler

    allowed = set(unpickler._get_allowed_globals()) | set(unpickler._get_user_allowed_globals())
    return sorted(name for name in names if name not in allowed)


def _zip_pickle(path: Path) -> bytes | None:
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            return archive.read(name) if name is not None else None
    except Exception:
        return None


def _torchscript_code(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except Exception:
        return ["<unreadable>"]
    modules = set()
    for name in names:
        _, _, rest = name.partition("/code/")
        if rest.endswith(".py"):
            modules.add("torchscript:" + rest.removesuffix(".py").replace("/", "."))
    return sorted(modules) or ["torchscript:<code>"]
