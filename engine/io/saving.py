"""Save a document to any supported format, atomically: `Session.save` lands here.

Every file is written to a temporary file in the target folder and fsynced; a set of
files (a sharded set, a folder's weights) is committed as one step, so a failed,
cancelled or killed save leaves the old set readable and never a mix (see
`engine.io.set_commit`). A new folder is written as a temporary folder and renamed into
place.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import FileError
from ..progress import Progress, report
from . import formats
from .atomic import StagedFiles, atomic_new_folder
from .file_ties import EVERY_NAME, TIE_MODES, TIES_KEY, TiePlan, plan_ties
from .folder_files import copy_regular, kept_files, skipped_note
from .growth import Growth, check_growth, growth_of
from .json_files import JSONProblem, parse_json
from .readers import ALIASES_KEY, FROZEN_KEY, RECIPE_KEY, SAVE_ID_KEY, SHARDS_KEY
from .safetensors_writer import header_bytes, whole_source, write_safetensors
from .set_commit import (
    Family,
    SetCommit,
    family_of_weights,
    family_stems,
    file_family,
    folder_family,
    folder_lock,
    new_save_id,
    remove_leftovers,
)
from .shard_plan import as_opened, by_size, parse_size
from .sharded import SHARD_NAME, shard_names
from .sources import StoredFile
from .stored_items import StoredItem, frozen_names, stored_items
from .torch_writer import save_pt

if TYPE_CHECKING:
    from ..document import Document

SAFETENSORS = "safetensors"
PT = "pt"
FOLDER = "folder"
FORMATS = (SAFETENSORS, PT, FOLDER)
#: shard size when a sharded output is asked for without a size (Hugging Face's default)
DEFAULT_SHARD_SIZE = 5 * 10**9
_WEIGHTSMITH_KEYS = (ALIASES_KEY, FROZEN_KEY, RECIPE_KEY, SAVE_ID_KEY, SHARDS_KEY, TIES_KEY)


def save_document(
    document: Document,
    recipe: list[dict[str, Any]],
    path: str | Path,
    *,
    format: str | None = None,
    max_shard_size: int | str | None = None,
    whole_model: bool = False,
    progress: Progress | None = None,
    metadata: dict[str, str] | None = None,
    include_extras: bool = True,
    weights_format: str | None = None,
    ties: str | None = None,
    allow_large_output: bool = False,
    parallel_shards: int | None = None,
) -> dict[str, Any]:
    """Write `document` to `path`, atomically; the caller (the Session) marks itself saved.

    Parameters
    ----------
    recipe : the edits that made the document, recorded in the file's metadata
    path : `x.safetensors`; `x.safetensors.index.json` (sharded); `x.pt/.pth/.bin/.ckpt`;
        an existing folder or a path without extension (Hugging Face folder layout)
    format : 'safetensors', 'pt' or 'folder'; default from `path`
    max_shard_size : shard safetensors (and folders) at this size ('5GB', '500MB', bytes);
        default: a folder keeps the opened layout, a single file stays single
    whole_model : torch.save the module itself (model mode, .pt only); needs trust to open
    progress : reports bytes written; `cancel()` stops the save, leaving old files intact
    metadata : extra safetensors metadata (text to text)
    include_extras : .pt of a nested checkpoint: put the wrapper (epoch, optimizer state,
        hyper-parameters) back around the state dict
    weights_format : folder output: 'safetensors' or 'pt' weights; default the opened
        folder's, else safetensors
    ties : how tied tensors are stored (see `engine.io.file_ties`): 'every_name' (strict
        `load_state_dict(load_file(p))` loads it), 'once' (`safetensors.torch.load_model`
        into a model that ties them), 'hf' (transformers reties what it ties itself);
        default 'hf' for a folder of a model whose config ties tensors, else 'every_name'
    allow_large_output : write a file more than 64x (and 1 GiB) bigger than the stored
        tensors (broadcast views written dense); refused without it (see `engine.io.growth`)
    parallel_shards : shards written side by side (default `PARALLEL_SHARDS`); 1 when
        each tensor is made as it is written (a streamed merge), so that memory holds one

    Returns
    -------
    `{"path", "format", "files": [written paths], "copied": [unchanged files copied or
    kept], "bytes", "tensors": names the weights files hold, "ties": how ties were stored
    (None without ties: see `TiePlan.summary`), "notes": [things a user should know, e.g.
    extras not saved]}`

    Raises
    ------
    FileError : bad target or options, or the write failed (old files intact)
    Cancelled : `progress.cancel()` was called (old files intact)
    """
    path = Path(path).expanduser()
    kind = target_kind(path, format)
    if whole_model and (kind != PT or document.model is None):
        raise FileError(path, "whole_model: only a model (open with an architecture or a "
                        "trusted pickled model) can be saved whole, as .pt/.pth")
    shard_bytes = parse_size(max_shard_size) if max_shard_size is not None else None
    if not path.parent.is_dir():
        raise FileError(path, f"folder {path.parent} does not exist")
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(key, str) and isinstance(value, str) for key, value in metadata.items())):
        raise FileError(path, "metadata: expected text keys mapped to text values")
    job = _Job(document, recipe, path, progress, metadata)
    job.plan_ties(ties, kind)
    job.allow_large_output = allow_large_output
    if parallel_shards is not None:
        job.parallel = max(1, parallel_shards)
    try:
        if kind == FOLDER:
            _save_folder(job, shard_bytes, weights_format)
        elif kind == SAFETENSORS:
            _save_safetensors(job, shard_bytes)
        else:
            _save_pt_file(job, whole_model, include_extras)
    except OSError as error:
        raise FileError(path, f"could not be written ({error.strerror or error})") from None
    origin = document.origin
    if kind != PT and origin is not None and origin.wrapper is not None:
        job.notes.append("the checkpoint's other entries (epoch, optimizer state, ...) were not "
                         "saved: safetensors holds tensors only; save as .pt to keep them")
    report(progress, 1.0, f"Saved {path.name}")
    return {"path": str(path), "format": kind, "files": [str(p) for p in job.files],
            "copied": [str(p) for p in job.copied],
            "bytes": sum(item.nbytes for item in job.items), "tensors": job.names_written,
            "ties": job.ties.summary() if job.ties.groups_count else None, "notes": job.notes}


def large_output(document: Document, path: str | Path, **options: Any) -> Growth | None:
    """What a save with these options would write past the growth limits (a broadcast view
    written dense), so a caller can ask before saving with `allow_large_output=True`;
    None when the save needs no confirmation."""
    path = Path(path).expanduser()
    kind = target_kind(path, options.get("format"))
    if kind == PT or (kind == FOLDER and options.get("weights_format") == PT):
        return None
    job = _Job(document, [], path, None)
    job.plan_ties(options.get("ties"), kind)
    return growth_of(job.items)


#: endings of the files each format writes (a folder has none)
_FORMAT_ENDINGS = {SAFETENSORS: (".safetensors", ".safetensors.index.json"),
                   PT: formats.PT_SUFFIXES}
#: endings that name weights of formats Weightsmith does not write
_OTHER_WEIGHT_ENDINGS = (".onnx", ".h5", ".msgpack", ".gguf", ".tflite", ".index.json")


def format_of_name(path: str | Path) -> str | None:
    """The format a target's name asks for: 'safetensors', 'pt', 'folder' (an existing
    folder or a name without extension), '' for another format's weights (`.onnx`), or
    None when the ending says nothing (`x.weights`)."""
    path = Path(path)
    name = path.name.lower()
    for kind, endings in _FORMAT_ENDINGS.items():
        if name.endswith(endings):
            return kind
    if name.endswith(_OTHER_WEIGHT_ENDINGS):
        return ""
    if path.is_dir() or not path.suffix:
        return FOLDER
    return None


def target_kind(path: str | Path, format: str | None = None) -> str:
    """The format a save to `path` writes: `format` when given, else the one the name asks
    for; a `format` that contradicts the name is refused, so no file is mislabelled.

    Raises
    ------
    FileError : unknown format, a name of another format, or an existing folder for a file
    """
    path = Path(path).expanduser()
    named = format_of_name(path)
    if format is not None and format not in FORMATS:
        raise FileError(path, f"format: unknown '{format}' (use {', '.join(FORMATS)})")
    if format is None:
        if not named:
            raise FileError(path, "unknown output format (use .safetensors, "
                            ".pt/.pth/.bin/.ckpt, or a folder)")
        return named
    if path.is_dir() and format != FOLDER:
        raise FileError(path, f"is a folder; format '{format}' writes a file (choose format "
                        "'folder', or name a file)")
    if named is not None and named != format and not (named == FOLDER and not path.is_dir()):
        wanted = {SAFETENSORS: ".safetensors", PT: ".pt", FOLDER: "no extension"}[format]
        holds = {SAFETENSORS: "safetensors", PT: "a torch.save file", FOLDER: "a folder",
                 "": "another format"}[named]
        raise FileError(path, f"format '{format}' contradicts the name (it says {holds}); "
                        f"name it with {wanted}, or leave the format to the name")
    return format


class _Job:
    """State of one save: items, metadata, progress and what was written."""

    def __init__(self, document: Document, recipe: list[dict[str, Any]], path: Path,
                 progress: Progress | None, metadata: dict[str, str] | None = None) -> None:
        self.document = document
        self.recipe = recipe
        self.extra_metadata = dict(metadata or {})
        self.path = path
        self.progress = progress
        self.items = stored_items(document)
        self.ties = TiePlan(EVERY_NAME, self.items)
        self.total = sum(item.nbytes for item in self.items) or 1
        self.done = 0
        self.files: list[Path] = []
        self.copied: list[Path] = []
        self.notes: list[str] = []
        #: tensor names the written weights files hold (what a message may count)
        self.names_written = 0
        self.origin = document.origin
        #: marks the shards this save writes, and the index that lists them
        self.save_id = new_save_id()
        self.allow_large_output = False
        self.parallel = PARALLEL_SHARDS
        self._lock = threading.Lock()
        self._failed = False

    def advance(self, nbytes: int) -> None:
        """Count bytes written; report progress (raises Cancelled when cancelled).

        Called from the threads that write shards side by side: one lock keeps the count
        and the callback serial, and once one shard failed the others stop too.
        """
        with self._lock:
            if self._failed:
                raise _OtherShardFailed()
            self.done += nbytes
            report(self.progress, min(self.done / self.total, 0.999),
                   f"Writing {self.path.name}")

    def plan_ties(self, mode: str | None, kind: str) -> None:
        """Decide how tied tensors are stored (.pt: every name over one storage)."""
        if kind == PT:
            if mode not in (None, *TIE_MODES):
                raise FileError(self.path, f"ties: unknown '{mode}' (use {', '.join(TIE_MODES)})")
            self.ties = TiePlan(EVERY_NAME, self.items,
                                groups_count=sum(1 for item in self.items if item.aliases))
            self.ties.loads_with = "torch.load gives every name, over one storage"
            return
        self.ties = plan_ties(self.document, self.items, mode, kind == FOLDER, self.path)
        self.items = self.ties.items
        self.total = sum(item.nbytes for item in self.items) or 1

    def count_names(self, count: int) -> None:
        """Add the tensor names one written (or kept) weights file holds."""
        with self._lock:
            self.names_written += count

    def fail(self) -> None:
        with self._lock:
            self._failed = True

    def record(self, final: Path, outcome: str) -> None:
        """Note a file as written, or as copied or kept unchanged."""
        (self.files if outcome == "written" else self.copied).append(final)

    # ------------------------------------------------------------------ metadata
    def weightsmith_metadata(self) -> dict[str, Any]:
        """Ties, freeze state and recipe, as JSON values."""
        values: dict[str, Any] = {}
        if self.ties.aliases:
            values[ALIASES_KEY] = self.ties.aliases
        if self.ties.groups:
            values[TIES_KEY] = self.ties.groups
        frozen = frozen_names(self.document)
        if frozen:
            values[FROZEN_KEY] = frozen
        recipe = _previous_recipe(self.origin) + self.recipe
        if recipe:
            values[RECIPE_KEY] = recipe
        return values

    def file_metadata(self) -> dict[str, str]:
        """Metadata of a single safetensors file: the opened file's, ours, the caller's."""
        kept = {}
        if self.origin is not None:
            for key, value in self.origin.metadata.items():
                if key in _WEIGHTSMITH_KEYS or key == "total_size":
                    continue
                kept[key] = value if isinstance(value, str) else json.dumps(value)
        ours = {key: json.dumps(value) for key, value in self.weightsmith_metadata().items()}
        return {"format": "pt", **kept, **ours, **self.extra_metadata}

    def index_metadata(self, total: int, shard_ids: dict[str, str | None]) -> dict[str, Any]:
        """Metadata of an index: total size, the opened index's, ours, the save ids of the
        shards (so a mixed set is refused when opened), the caller's."""
        kept = {}
        if self.origin is not None and self.document.source.get("layout") == "sharded":
            kept = {key: value for key, value in self.origin.metadata.items()
                    if key not in _WEIGHTSMITH_KEYS and key != "total_size"}
        return {"total_size": total, **kept, **self.weightsmith_metadata(),
                SAVE_ID_KEY: self.save_id, SHARDS_KEY: dict(sorted(shard_ids.items())),
                **self.extra_metadata}

    def shard_metadata(self) -> dict[str, str]:
        """Metadata of a shard this save writes."""
        return {"format": "pt", SAVE_ID_KEY: self.save_id}


class _OtherShardFailed(Exception):
    """Stops a shard's writer because another shard's failed (that error is reported)."""


#: shards written side by side: copies run in the kernel and wait on the disk, so several
#: streams help even on two cores (measured: 8 GB in 4.1 s with 4, 6.9 s with 1)
PARALLEL_SHARDS = 4


def _previous_recipe(origin: Any) -> list[Any]:
    text = origin.metadata.get(RECIPE_KEY) if origin is not None else None
    if text is None:
        return []
    try:
        value = parse_json(text) if isinstance(text, str) else text
    except JSONProblem:  # not a recipe this program wrote: not carried on
        return []
    return value if isinstance(value, list) else []


# ---------------------------------------------------------------------- single files
def _save_pt_file(job: _Job, whole_model: bool, include_extras: bool) -> None:
    report(job.progress, 0.0, f"Writing {job.path.name}")
    folder, name = job.path.parent, job.path.name
    family = Family((name,), ())
    with folder_lock(folder):
        remove_leftovers(folder, family)
        with SetCommit(folder, family, job.save_id) as commit:
            used_wrapper = save_pt(job.document, commit.stage(name), whole_model=whole_model,
                                   include_extras=include_extras)
            job.count_names(sum(1 + len(item.aliases) for item in job.items))
            if job.progress is not None:
                job.progress.check()
            commit.commit(name)
        job.notes += commit.notes
    job.done = sum(item.nbytes for item in job.items)
    job.files.append(job.path)
    if used_wrapper:
        job.notes.append("the checkpoint's other entries were saved around the state dict")


def _save_safetensors(job: _Job, shard_bytes: int | None) -> None:
    folder, name = job.path.parent, job.path.name
    check_growth(job.items, job.path, job.allow_large_output)
    with folder_lock(folder):
        if name.lower().endswith(".index.json"):
            stem = name[: -len(".index.json")]
            stem = stem[: -len(".safetensors")] if stem.lower().endswith(".safetensors") else stem
            family = file_family(stem, ".safetensors", sharded=True)
            remove_leftovers(folder, family)
            plan = _plan(job, shard_bytes, keep=shard_bytes is None)
            _write_set(job, folder, stem, ".safetensors", plan, name, family)
        elif shard_bytes is not None and job.total > shard_bytes:
            family = file_family(job.path.stem, ".safetensors", sharded=True)
            remove_leftovers(folder, family)
            plan = [(group, None) for group in by_size(job.items, shard_bytes)]
            _write_set(job, folder, job.path.stem, ".safetensors", plan, f"{name}.index.json",
                       family)
            job.notes.append(f"sharded into {len(plan)} files; index {name}.index.json")
        else:
            family = file_family(job.path.stem, ".safetensors", sharded=False)
            remove_leftovers(folder, family)
            _write_single(job, folder, name, ".safetensors", family)


def _write_single(job: _Job, folder: Path, name: str, suffix: str, family: Family) -> None:
    """Write one weights file as the family's new set."""
    with SetCommit(folder, family, job.save_id) as commit:
        outcome, _ = _stage_file(job, commit, folder / name, job.items, suffix,
                                 job.file_metadata())
        if job.progress is not None:
            job.progress.check()
        commit.commit(name)
    job.record(folder / name, outcome)
    job.notes += commit.notes


def _stage_file(job: _Job, commit: SetCommit, final: Path, group: list[StoredItem],
                suffix: str, metadata: dict[str, str],
                shard: bool = False) -> tuple[str, str | None]:
    """Stage one weights file (safetensors or torch.save) for `final`.

    A safetensors file that would equal its source byte for byte is copied whole, or
    left alone when `final` is that very source; a shard does so with the source's own
    metadata (and save id). Returns the outcome ('written', 'copied' or 'kept') and the
    save id the file carries.
    """
    if suffix != ".safetensors":
        temp = commit.stage(final.name)
        state: dict[str, torch.Tensor] = {}
        for item in group:
            tensor = item.raw()  # torch.save keeps a view a view: no dense copy
            state[item.name] = tensor
            for alias in item.aliases:
                state[alias] = tensor  # one storage on disk, a tie again when read back
        torch.save(state, temp)
        job.count_names(len(state))
        job.advance(sum(item.nbytes for item in group))
        return "written", None
    source = _sole_source(group) if shard else None
    if source is not None and source.header_metadata is not None:
        header = header_bytes(group, source.header_metadata, final)
        if whole_source(group, header) is source:
            metadata = source.header_metadata  # the whole shard unchanged: keep its bytes
    header = header_bytes(group, metadata, final)
    job.count_names(_header_names(header))
    same = whole_source(group, header)
    if same is not None and same.same_as_path(final):
        job.advance(sum(item.nbytes for item in group))
        return "kept", metadata.get(SAVE_ID_KEY)  # the file on disk already holds exactly this
    temp = commit.stage(final.name)
    return write_safetensors(temp, group, metadata, job.advance), metadata.get(SAVE_ID_KEY)


def _sole_source(group: list[StoredItem]) -> StoredFile | None:
    """The one file every item of `group` still lies in unread, if there is one."""
    files = {id(item.source.file): item.source.file for item in group
             if item.source is not None}
    if len(files) != 1 or any(item.source is None for item in group):
        return None
    return next(iter(files.values()))


def _header_names(header: bytes) -> int:
    """How many tensors a safetensors header (8-byte length, JSON) names."""
    return sum(1 for key in parse_json(header[8:]) if key != "__metadata__")


# ---------------------------------------------------------------------- sharded sets
Plan = list[tuple[list[StoredItem], "str | None"]]


def _plan(job: _Job, shard_bytes: int | None, keep: bool) -> Plan:
    """Shards with the name of the source shard each came from (None for new cuts)."""
    origin = job.origin
    if keep and origin is not None and origin.shards:
        groups, names = as_opened(job.items, origin.shard_of, origin.shards)
        return list(zip(groups, names, strict=True))
    return [(group, None) for group in by_size(job.items, shard_bytes or DEFAULT_SHARD_SIZE)]


def _shard_file_names(plan: Plan, stem: str, suffix: str, origin: Any) -> list[str]:
    """The source's shard names when the set of shards is unchanged, else Hugging Face's."""
    sources = [name for _, name in plan]
    matches = [SHARD_NAME.match(name or "") for name in sources]
    if (origin is not None and sources == origin.shards
            and all(m is not None and m.group("stem") == stem and m.group("suffix") == suffix
                    for m in matches)):
        return [str(name) for name in sources]  # same set of shards: same names
    if len(plan) == 1:
        return [f"{stem}-00001-of-00001{suffix}"]
    return shard_names(stem, suffix, len(plan))


def _write_set(job: _Job, folder: Path, stem: str, suffix: str, plan: Plan,
               index_name: str, family: Family) -> None:
    """Write shards and their index into the existing `folder` as the family's new set,
    committed as one step (see `engine.io.set_commit`)."""
    names = _shard_file_names(plan, stem, suffix, job.origin)
    shard_of: dict[str, str] = {}
    total = 0
    for (group, _), file_name in zip(plan, names, strict=True):
        for item in group:
            shard_of[item.name] = file_name
            total += item.nbytes
    with SetCommit(folder, family, job.save_id) as commit:
        results = _stage_in_parallel(job, commit, [
            (folder / file_name, group) for (group, _), file_name in zip(plan, names,
                                                                        strict=True)], suffix)
        ids = {file_name: shard_id for file_name, (_, shard_id) in zip(names, results,
                                                                        strict=True)}

        def index_bytes(on_disk: dict[str, str]) -> bytes:
            index = {"metadata": job.index_metadata(total, {on_disk[name]: ids[name]
                                                            for name in names}),
                     "weight_map": {tensor: on_disk[shard]
                                    for tensor, shard in sorted(shard_of.items())}}
            return (json.dumps(index, indent=2) + "\n").encode("utf-8")

        if job.progress is not None:
            job.progress.check()
        on_disk = commit.commit(index_name, names, index_bytes)
    for file_name, (outcome, _) in zip(names, results, strict=True):
        job.record(folder / on_disk[file_name], outcome)
    job.files.append(folder / index_name)
    job.notes += commit.notes


def _stage_in_parallel(job: _Job, commit: SetCommit,
                       shards: list[tuple[Path, list[StoredItem]]],
                       suffix: str) -> list[tuple[str, str | None]]:
    """Stage the shards, several at a time; the first error (or Cancelled) is raised after
    every writer stopped."""
    def stage(final: Path, group: list[StoredItem]) -> tuple[str, str | None]:
        try:
            return _stage_file(job, commit, final, group, suffix, job.shard_metadata(),
                               shard=True)
        except BaseException:
            job.fail()
            raise

    with ThreadPoolExecutor(max_workers=job.parallel) as pool:
        futures = [pool.submit(stage, final, group) for final, group in shards]
    errors = [future.exception() for future in futures]
    first = next((error for error in errors if error is not None
                  and not isinstance(error, _OtherShardFailed)), None)
    if first is not None:
        raise first
    return [future.result() for future in futures]


# ---------------------------------------------------------------------- folders
def _save_folder(job: _Job, shard_bytes: int | None, weights_format: str | None) -> None:
    source = job.document.source
    if weights_format is None:
        from_pt_folder = source.get("folder") and source.get("format") in (formats.PT,
                                                                            formats.PT_INDEX)
        weights_format = PT if from_pt_folder else SAFETENSORS
    if weights_format not in (SAFETENSORS, PT):
        raise FileError(job.path, f"weights_format: unknown '{weights_format}' "
                        "(use safetensors or pt)")
    suffix = ".safetensors" if weights_format == SAFETENSORS else ".bin"
    if suffix == ".safetensors":
        check_growth(job.items, job.path, job.allow_large_output)
    stem = _folder_stem(source, suffix)
    family = folder_family(*family_stems(stem, suffix))
    opened_sharded = bool(job.origin is not None and job.origin.shards)
    if shard_bytes is not None:
        plan: Plan = [(group, None) for group in by_size(job.items, shard_bytes)]
    elif opened_sharded:
        plan = _plan(job, None, keep=True)
    else:
        plan = [(job.items, None)]
    if job.path.exists():
        if not job.path.is_dir():
            raise FileError(job.path, "exists and is not a folder")
        with folder_lock(job.path):
            remove_leftovers(job.path, family, every_temporary=True)
            _write_folder(job, job.path, plan, stem, suffix, family)
        return
    with folder_lock(job.path.parent):
        remove_leftovers(job.path.parent, None, names=(job.path.name,))
        with atomic_new_folder(job.path) as temp:
            _write_folder(job, temp, plan, stem, suffix, family)
    job.files = [job.path / p.relative_to(temp) if temp in p.parents else p for p in job.files]
    job.copied = [job.path / p.relative_to(temp) if temp in p.parents else p
                  for p in job.copied]


def _write_folder(job: _Job, folder: Path, plan: Plan, stem: str, suffix: str,
                  family: Family) -> None:
    source = job.document.source
    opened = Path(source["folder"]) if source.get("folder") else None
    if opened is not None and os.path.realpath(opened) != os.path.realpath(job.path):
        _copy_kept_files(job, opened, folder, family)
    if len(plan) > 1:
        _write_set(job, folder, stem, suffix, plan, f"{stem}{suffix}.index.json", family)
        return
    _write_single(job, folder, f"{stem}{suffix}", suffix, family)


def _copy_kept_files(job: _Job, opened: Path, folder: Path, family: Family) -> None:
    """Copy every file and subfolder of the opened folder that is not the model's weights,
    byte for byte, never one from outside it (see `engine.io.folder_files`)."""
    source_family = family_of_weights(str(job.document.source.get("weights_name") or ""))
    kept = kept_files(opened, lambda name: family.owns(name) or source_family.owns(name))
    with StagedFiles(folder) as staged:
        for relative in kept.folders:
            target = folder / relative
            if target.exists() and not target.is_dir():
                raise FileError(target, "is a file where the opened folder has a folder")
            target.mkdir(exist_ok=True)
        for relative, real in kept.files.items():
            copy_regular(real, staged.stage(relative))
            job.files.append(folder / relative)
        staged.commit()
    note = skipped_note(kept.skipped)
    if note:
        job.notes.append(note)


def _folder_stem(source: dict[str, Any], suffix: str) -> str:
    """The weights' name stem of the opened folder ('model', 'diffusion_pytorch_model')."""
    name = str(source.get("weights_name") or "")
    for ending in (f"{suffix}.index.json", suffix):
        if name.endswith(ending):
            match = SHARD_NAME.match(name)
            return match.group("stem") if match else name[: -len(ending)]
    return "model" if suffix == ".safetensors" else "pytorch_model"
