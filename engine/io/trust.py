"""What loading a pickle-based file would run: the globals it imports, for the trust dialog.

Nothing here unpickles anything. The pickles `torch.load` would read are executed by
`engine.io.pickle_machine`, a stack machine over stand-in values that imports and calls
nothing, so the list is exactly what the unpickler's `find_class` would be asked for:
decoy strings and memo tricks cannot change it. When the list cannot be known (names
computed while loading, a damaged pickle, an old tar-format file), `CodeListing.undetermined`
says why, and callers refuse rather than show a partial list.

The GUI shows `code_listing(path).unsafe` in its confirmation dialog before the user decides
to open the file with `trust=True`.
"""

from __future__ import annotations

import functools
import io
import mmap
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from .pickle_limits import AllocationRules
from .pickle_machine import PickleRun, Undetermined, run_pickle
from .torch_formats import is_zip_checkpoint

#: at most this many names are put in a one-line error message
LISTED = 4
#: torch.save's legacy format starts with this number, pickled
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: pickles of a legacy file: magic number, protocol, system info, the object, storage keys
LEGACY_PICKLES = 5


@dataclass(frozen=True)
class CodeListing:
    """What opening one file would import and run.

    Attributes
    ----------
    imports : every global the unpickler would import, in order (torch's own rebuild
        functions included)
    unsafe : those beyond what `weights_only=True` allows: the code the user must trust
    undetermined : why the list cannot be known, or None; a file with a reason here is
        never offered for trust
    torchscript : the file is a TorchScript archive (`unsafe` names its code files)
    """

    imports: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)
    undetermined: str | None = None
    torchscript: bool = False

    @property
    def needs_trust(self) -> bool:
        """Whether loading the file is known to run more than `weights_only=True` allows.

        A file whose list is undetermined but that names nothing unsafe is left to the
        `weights_only` load, which either reads it or refuses it.
        """
        return bool(self.unsafe) or self.torchscript

    @property
    def can_be_trusted(self) -> bool:
        """Whether the list is complete, so that a user can be asked to trust it."""
        return self.undetermined is None


@dataclass(frozen=True)
class FileScan:
    """One pass over the pickles a file's load would read: what they import and whether
    their calls would allocate more than `engine.io.pickle_limits` allows."""

    listing: CodeListing
    allocation_problem: str | None = None


def code_listing(path: str | Path) -> CodeListing:
    """What `torch.load(path, weights_only=False)` (or `torch.jit.load`) would import.

    Parameters
    ----------
    path : a .pt/.pth/.bin/.ckpt file (zip or legacy format) or a TorchScript archive
    """
    return scan_file(path).listing


def allocation_problem(path: str | Path) -> str | None:
    """Why a `weights_only` load of `path` would allocate too much, or None."""
    return scan_file(path).allocation_problem


def scan_file(path: str | Path) -> FileScan:
    """Scan the pickles of `path` once (remembered while the file is unchanged)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        return FileScan(CodeListing(undetermined=f"cannot be read ({error.strerror or error})"))
    return _scan_cached(str(path), (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _scan_cached(name: str, identity: tuple[int, ...]) -> FileScan:
    path = Path(name)
    if is_zip_checkpoint(path):
        records = _zip_records(path)
        if records is None:
            return FileScan(CodeListing(undetermined="not a readable zip archive"))
        if "constants.pkl" in records:
            return FileScan(CodeListing(unsafe=_torchscript_code(records), torchscript=True))
        data = _zip_record(path, "data.pkl")
        if data is None:
            return FileScan(CodeListing(undetermined="the archive has no data.pkl"))
        rules = AllocationRules()
        return FileScan(_listing([data], rules), rules.problem)
    if _is_tar(path):
        return FileScan(CodeListing(undetermined="the old tar-based torch.save format, whose "
                                    "pickles are not listed"))
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0,
                                                   access=mmap.ACCESS_READ) as mapped:
            rules = AllocationRules()
            listing = _legacy_listing(mapped, rules)
    except (OSError, ValueError) as error:
        return FileScan(CodeListing(undetermined=f"cannot be read ({error})"))
    return FileScan(listing, rules.problem or rules.storage_problem(identity[2]))


def unsafe_globals(path: str | Path) -> list[str]:
    """The globals a checkpoint imports beyond what `weights_only` allows (see `code_listing`).

    An empty list means `weights_only=True` can load it; `'<undetermined>'` is listed
    when what it imports cannot be known.
    """
    listing = code_listing(path)
    return listing.unsafe + (["<undetermined>"] if listing.undetermined else [])


def refusal_message(path: str | Path) -> str:
    """The one-line message for a file that `weights_only=True` refuses."""
    listing = code_listing(path)
    if listing.torchscript:
        kind = "a TorchScript archive (it carries code)"
    else:
        kind = "loading it would import and run code from the file"
    names = listing.unsafe
    listed = ", ".join(names[:LISTED])
    if len(names) > LISTED:
        listed += f" and {len(names) - LISTED} more"
    needs = f" (it imports {listed})" if names else ""
    if listing.undetermined:
        needs += f" (what it would import cannot be determined: {listing.undetermined})"
    return (f"refused: {kind}{needs}; open it with trust (--trust) only if you trust "
            "where it came from")


def _listing(pickles: list[bytes] | None = None, rules: AllocationRules | None = None, *,
             imports: list[str] | None = None, undetermined: str | None = None) -> CodeListing:
    found: list[str] = list(imports or [])
    if pickles is not None:
        try:
            for data in pickles:
                found += [name for name in run_pickle(data, rules=rules).imports
                          if name not in found]
        except Undetermined as error:
            found += [name for name in error.imports if name not in found]
            return CodeListing(found, _unsafe(found), str(error))
    return CodeListing(found, _unsafe(found), undetermined)


def _legacy_listing(data: mmap.mmap, rules: AllocationRules) -> CodeListing:
    """The legacy format: torch.load unpickles up to five pickles one after the other, and
    stops after the first when it is not the magic number."""
    found: list[str] = []
    start = 0
    for number in range(LEGACY_PICKLES):
        try:
            run = run_pickle(data, start, rules=rules)
        except Undetermined as error:
            found += [name for name in error.imports if name not in found]
            return _listing(imports=found, undetermined=str(error))
        found += [name for name in run.imports if name not in found]
        if number == 0 and not _is_magic(run):
            break
        start = run.end
        if start >= len(data):
            break
    return _listing(imports=found)


def _is_magic(run: PickleRun) -> bool:
    value = run.value
    return value is not None and value.kind == "number" and value.value == LEGACY_MAGIC


def _unsafe(names: list[str]) -> list[str]:
    from torch import _weights_only_unpickler as unpickler

    allowed = set(unpickler._get_allowed_globals()) | set(unpickler._get_user_allowed_globals())
    return [name for name in names if name not in allowed]


def _zip_records(path: Path) -> list[str] | None:
    """The record names torch's own reader sees (what `torch.load` looks at)."""
    import torch

    try:
        return list(torch._C.PyTorchFileReader(str(path)).get_all_records())
    except Exception:
        return None


def _zip_record(path: Path, name: str) -> bytes | None:
    import torch

    try:
        reader = torch._C.PyTorchFileReader(str(path))
        if not reader.has_record(name):
            return None
        return bytes(reader.get_record(name))
    except Exception:
        return None


def _is_tar(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return tarfile.is_tarfile(io.BytesIO(handle.read(1024)))
    except (OSError, tarfile.TarError):
        return False


def _torchscript_code(records: list[str]) -> list[str]:
    modules = set()
    for name in records:
        _, _, rest = name.partition("code/")
        if rest.endswith(".py"):
            modules.add("torchscript:" + rest.removesuffix(".py").replace("/", "."))
    return sorted(modules) or ["torchscript:<code>"]
