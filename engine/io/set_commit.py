"""Commit a save's weight files into a folder so that readers see the old set or the new one.

A folder holds a model's weights in one of four forms, which readers (transformers, and
Weightsmith) look for in this order: `model.safetensors`; `model.safetensors.index.json`
with its shards; `pytorch_model.bin`; `pytorch_model.bin.index.json` with its shards.
These names and the shards are the folder's weight *family*. A save:

1. locks the folder (a second Weightsmith save into it is refused meanwhile) and removes
   what killed saves left: temporaries, and shards under save-unique names that no set
   uses;
2. writes every new file to a temporary, fsyncs it and renames it to a name that no
   present set uses: its final name when that is free, else a save-unique name
   (`model-00002-of-00003.weightsmith-<id>.safetensors`);
3. renames the new entry point into place (the single file, or the index naming the
   shards): this is the commit. When a form read before the new one is present (an old
   `model.safetensors` beside a new index), removing it is the commit instead, and the
   forms between are removed before it;
4. gives shards written under save-unique names their final names: a hard link each,
   then an index naming them, then the unique names are removed;
5. removes every file of the family that the new set does not use.

A failure or a kill before the commit leaves the old set readable; after it, the new
one. Failures after the commit are reported as notes: the new set is already in place.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import FileError
from .atomic import TEMP_MARK, final_mode, fsync_file, fsync_folder
from .json_files import read_json
from .sharded import SHARD_NAME

#: shards written under a save-unique name because the final name was in use
UNIQUE_SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})"
                          r"\.weightsmith-(?P<id>[0-9a-f]+)(?P<suffix>\.safetensors|\.bin)$")


def new_save_id() -> str:
    """A random id that marks the files of one save (16 hex digits)."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Family:
    """The weight files of one model in one folder.

    Attributes
    ----------
    entries : entry points (single files and indexes) in the order readers look for them
    shard_kinds : (stem, suffix) of the shards that belong to the family
    """

    entries: tuple[str, ...]
    shard_kinds: tuple[tuple[str, str], ...]

    def owns(self, name: str) -> bool:
        """Tell whether `name` is a weight file of this family (entry, shard, unique shard)."""
        if name in self.entries:
            return True
        for pattern in (SHARD_NAME, UNIQUE_SHARD):
            match = pattern.match(name)
            if match and (match.group("stem"), match.group("suffix")) in self.shard_kinds:
                return True
        return False


def folder_family(safetensors_stem: str, pt_stem: str) -> Family:
    """The family of a Hugging Face folder (`model.*` and `pytorch_model.*`)."""
    return Family((f"{safetensors_stem}.safetensors", f"{safetensors_stem}.safetensors.index.json",
                   f"{pt_stem}.bin", f"{pt_stem}.bin.index.json"),
                  ((safetensors_stem, ".safetensors"), (pt_stem, ".bin")))


def family_stems(stem: str, suffix: str) -> tuple[str, str]:
    """(safetensors stem, .bin stem) of a folder's weights: Hugging Face pairs `model` with
    `pytorch_model`; other libraries use one stem for both (`diffusion_pytorch_model`)."""
    if suffix == ".safetensors":
        return stem, "pytorch_model" if stem == "model" else stem
    return "model" if stem == "pytorch_model" else stem, stem


def family_of_weights(name: str) -> Family:
    """The folder family of an opened weights file or index (`model.safetensors.index.json`,
    `diffusion_pytorch_model.safetensors`, `pytorch_model.bin`...)."""
    base = name[: -len(".index.json")] if name.endswith(".index.json") else name
    match = SHARD_NAME.match(base)
    stem, suffix = (match.group("stem"), match.group("suffix")) if match \
        else os.path.splitext(base)
    return folder_family(*family_stems(stem, suffix if suffix == ".bin" else ".safetensors"))


def file_family(stem: str, suffix: str, sharded: bool) -> Family:
    """The family of `stem+suffix` and `stem+suffix.index.json` outside a model folder; the
    one written is read first (no folder reader chooses between them)."""
    single, index = f"{stem}{suffix}", f"{stem}{suffix}.index.json"
    return Family((index, single) if sharded else (single, index), ((stem, suffix),))


def index_shards(path: Path) -> set[str] | None:
    """The shard names an index file lists, or None when it cannot be read."""
    try:
        document = read_json(path)
    except FileError:
        return None
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict):
        return None
    return {shard for shard in weight_map.values() if isinstance(shard, str)}


def files_in_use(folder: Path, family: Family) -> set[str]:
    """Names that a present entry point of the family uses (itself and its shards).

    Every present entry counts, not only the one read first: overwriting a file that any
    reader may use would break that reader's set. An index that cannot be read protects
    every shard of the family.
    """
    used: set[str] = set()
    names = _names(folder)
    for entry in family.entries:
        if entry not in names:
            continue
        used.add(entry)
        if entry.endswith(".index.json"):
            shards = index_shards(folder / entry)
            used |= shards if shards is not None else {n for n in names if family.owns(n)}
    return used


def _names(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (POSIX `flock`); refuse when another save holds it.

    The lock ends with the process, so a killed save never leaves it behind.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on folders
        yield
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError as error:
        raise FileError(folder, f"cannot be opened ({error.strerror or error})") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileError(folder, "another Weightsmith save into this folder is running; "
                            "try again when it has finished") from None
        except OSError:
            pass  # a file system without locks: go on unlocked
        yield
    finally:
        os.close(descriptor)


def remove_leftovers(folder: Path, family: Family | None, *, every_temporary: bool = False,
                     names: tuple[str, ...] = ()) -> list[str]:
    """Remove what killed saves left in `folder`, under its lock.

    Temporaries (`.NAME.weightsmith-tmp-*`) of the family's files and of `names` go (of
    every file with `every_temporary`, for a model folder), and so do save-unique shards
    of `family` that no present entry uses. Returns the names removed.
    """
    in_use = files_in_use(folder, family) if family is not None else set()
    removed = []
    for name in sorted(_names(folder)):
        path = folder / name
        if _is_temporary(name, family, names, every_temporary):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        elif family is not None and UNIQUE_SHARD.match(name) and family.owns(name) \
                and name not in in_use:
            with contextlib.suppress(OSError):
                path.unlink()
        else:
            continue
        removed.append(name)
    return removed


def _is_temporary(name: str, family: Family | None, names: tuple[str, ...],
                  every: bool) -> bool:
    if not name.startswith(".") or TEMP_MARK not in name:
        return False
    if every:
        return True
    target = name[1: name.index(TEMP_MARK)]
    return target in names or (family is not None and family.owns(target))


#: builds an index file's bytes from the shard names it should list: final name -> on disk
IndexWriter = Callable[[dict[str, str]], bytes]


class SetCommit:
    """The new files of one save into one folder, committed as one step.

    Parameters
    ----------
    folder : where the set goes (locked by the caller with `folder_lock`)
    family : the weight files the new set replaces
    save_id : names save-unique files
    """

    def __init__(self, folder: Path, family: Family, save_id: str) -> None:
        self.folder = folder
        self.family = family
        self.save_id = save_id
        self.in_use = files_in_use(folder, family)
        self.notes: list[str] = []
        self._staged: list[tuple[Path, str]] = []
        self._placed: list[Path] = []
        self._committed = False

    def stage(self, name: str) -> Path:
        """A new empty temporary file that will become `folder/name`."""
        handle, temp = tempfile.mkstemp(prefix=f".{name}{TEMP_MARK}", dir=self.folder)
        os.close(handle)
        self._staged.append((Path(temp), name))
        return Path(temp)

    def placed_name(self, name: str) -> str:
        """The name a staged shard is renamed to before the commit: `name` itself when no
        present set uses it, else a save-unique name."""
        if name not in self.in_use:
            return name
        match = SHARD_NAME.match(name)
        if match is None:
            raise FileError(self.folder / name, "is in use by the present weights and is not "
                            "a shard name")
        return (f"{match.group('stem')}-{match.group('index')}-of-{match.group('count')}"
                f".weightsmith-{self.save_id}{match.group('suffix')}")

    def commit(self, entry: str, shards: list[str] | None = None,
               write_index: IndexWriter | None = None) -> dict[str, str]:
        """Put the staged files in place and make `entry` the folder's weights.

        Parameters
        ----------
        entry : the single file (staged, or left as it is when it is not) or the index
            (written here by `write_index`)
        shards : final names of the index's shards (staged ones and ones kept as they are)
        write_index : the index's bytes from {final shard name: name on disk}

        Returns
        -------
        {final shard name: name on disk}: the same unless renaming to final names failed
        """
        staged = {name: temp for temp, name in self._staged}
        for temp, name in self._staged:
            os.chmod(temp, final_mode(self.folder / name))
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(fsync_file, [temp for temp, _ in self._staged]))
        on_disk = {name: name for name in shards or []}
        for name in shards or []:
            if name in staged:
                on_disk[name] = self.placed_name(name)
                os.replace(staged[name], self.folder / on_disk[name])
                self._placed.append(self.folder / on_disk[name])
        fsync_folder(self.folder)
        if write_index is not None:
            self._write_entry(entry, write_index(on_disk))
            fsync_folder(self.folder)
        elif entry in staged:
            os.replace(staged[entry], self.folder / entry)
            fsync_folder(self.folder)
        self._remove_earlier_entries(entry)
        self._committed = True
        self._placed.clear()
        if write_index is not None and any(on_disk[n] != n for n in on_disk):
            self._give_final_names(entry, on_disk, write_index)
        self._remove_unused(entry, set(on_disk.values()))
        return on_disk

    @property
    def committed(self) -> bool:
        return self._committed

    def discard(self) -> None:
        """Before the commit: remove every temporary and every file placed so far."""
        if self._committed:
            return
        for path in [temp for temp, _ in self._staged] + self._placed:
            with contextlib.suppress(OSError):
                path.unlink()
        self._staged.clear()
        self._placed.clear()

    def __enter__(self) -> SetCommit:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is not None:
            self.discard()

    # ------------------------------------------------------------------ steps
    def _write_entry(self, entry: str, data: bytes) -> None:
        handle, temp = tempfile.mkstemp(prefix=f".{entry}{TEMP_MARK}", dir=self.folder)
        self._staged.append((Path(temp), entry))
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, final_mode(self.folder / entry))
        os.replace(temp, self.folder / entry)

    def _remove_earlier_entries(self, entry: str) -> None:
        """Remove the entry points read before `entry`, the one read first last: until
        then readers still see the old set; after it, the new one."""
        names = _names(self.folder)
        earlier = [e for e in self.family.entries[: self.family.entries.index(entry)]
                   if e in names] if entry in self.family.entries else []
        for name in reversed(earlier):
            os.unlink(self.folder / name)
            fsync_folder(self.folder)

    def _give_final_names(self, entry: str, on_disk: dict[str, str],
                          write_index: IndexWriter) -> None:
        renamed = {name: disk for name, disk in on_disk.items() if name != disk}
        try:
            for name, disk in renamed.items():
                link = self.folder / f".{name}{TEMP_MARK}{secrets.token_hex(4)}"
                os.link(self.folder / disk, link)
                os.replace(link, self.folder / name)
            fsync_folder(self.folder)
            self._write_entry(entry, write_index({name: name for name in on_disk}))
            fsync_folder(self.folder)
        except OSError as error:
            self.notes.append(f"shards keep their save-unique names ({', '.join(renamed.values())}"
                              f"): renaming failed ({error.strerror or error}); the set is "
                              "complete and the next save renames them")
            return
        for name, disk in renamed.items():
            on_disk[name] = name
            with contextlib.suppress(OSError):
                os.unlink(self.folder / disk)

    def _remove_unused(self, entry: str, shards: set[str]) -> None:
        keep = {entry, *shards}
        for name in sorted(_names(self.folder)):
            if name in keep or not (self.family.owns(name)
                                    or _is_temporary(name, self.family, (), False)):
                continue
            path = self.folder / name
            try:
                if path.is_dir() and not path.is_symlink():
                    continue  # a temporary folder of another target: not this save's
                path.unlink()
            except OSError as error:
                self.notes.append(f"{name}: no longer used but could not be removed "
                                  f"({error.strerror or error})")
        with contextlib.suppress(OSError):
            fsync_folder(self.folder)
