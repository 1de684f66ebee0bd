"""Files of a folder, and never a file from outside it.

Every path found inside a folder (a shard an index names, a Hugging Face folder's weights,
a tokenizer file a folder save copies) is resolved (`os.path.realpath`, through every link
of a chain) before it is used, and must land inside the folder. A Hugging Face hub cache
snapshot (`models--org--name/snapshots/<revision>/`) is the one folder whose files are
links by design: they may land in that repository's own `blobs/` folder.

A folder save keeps every file and subfolder of the opened folder that is not the model's
weights, byte for byte: configs, tokenizers, generation configs, READMEs,
sentence-transformers modules (`1_Pooling/`, `modules.json`, and the weights of the modules
`modules.json` names, such as `2_Dense/`). What is left out is said: weights of the
unedited model in other formats (stale after an edit), links that leave the folder or lead
nowhere, and things that are not regular files.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FileError
from .atomic import TEMP_MARK
from .json_files import JSONProblem, parse_json

#: endings of weight files: at the top of a model folder they are the model's own weights
#: (written anew, or stale in another format), never copied
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack",
                   ".onnx", ".gguf", ".index.json", ".tar", ".tflite", ".ot")
#: folders that belong to tools, not to the model
_TOOL_FOLDERS = (".git", ".cache", "__pycache__")


def containment_roots(folder: Path) -> list[Path]:
    """The resolved folders that files found in `folder` may resolve into."""
    real = Path(os.path.realpath(folder))
    roots = [real]
    repository = real.parent.parent
    if (real.parent.name == "snapshots" and (repository / "blobs").is_dir()
            and repository.name.startswith(("models--", "datasets--", "spaces--"))):
        roots.append(repository / "blobs")
    return roots


def _within(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def resolve_inside(path: Path, folder: Path, what: str = "weights") -> Path:
    """The real path of `path`, a regular file that must stay inside `folder`.

    Raises
    ------
    FileError : a link that leaves the folder or leads nowhere, or not a regular file
    """
    real = Path(os.path.realpath(path))
    if not _within(real, containment_roots(folder)):
        raise FileError(path, f"is a link to {real}, outside {folder}; refused ({what} of a "
                        "folder must stay in it)")
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise FileError(path, f"is a link to {real}, which does not exist") from None
    except OSError as error:
        raise FileError(path, f"cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileError(path, "is not a regular file")
    return real


def read_folder_json(folder: Path, name: str, max_bytes: int | None = None) -> Any:
    """The parsed JSON file `name` of `folder` (config.json, modules.json), read only from
    inside the folder, as every other file of a folder is.

    Parameters
    ----------
    max_bytes : refuse a larger file (None: no limit beyond what parsing bounds)

    Raises
    ------
    FileError : missing, a link that leaves the folder, not a regular file, larger than
        `max_bytes`, not UTF-8, or not JSON (hostile numbers and nesting included)
    """
    path = folder / name
    if not os.path.lexists(path):
        raise FileError(path, "no such file")
    real = resolve_inside(path, folder, "files")
    try:
        if max_bytes is not None and os.stat(real).st_size > max_bytes:
            raise FileError(path, f"is larger than {max_bytes:,} bytes; not read")
        text = real.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FileError(path, f"cannot be read ({error})") from None
    try:
        return parse_json(text)
    except JSONProblem as error:
        raise FileError(path, f"not valid JSON ({error})") from None


@dataclass
class KeptFiles:
    """What a folder save copies from the opened folder, and what it leaves out.

    Attributes
    ----------
    files : relative path (with '/') -> the real file to copy
    folders : relative paths of the subfolders, parents first (empty ones included)
    skipped : (relative path, why) of what is left out, for the save's notes
    """

    files: dict[str, Path] = field(default_factory=dict)
    folders: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def kept_files(folder: Path, model_weights: Callable[[str], bool] = lambda name: False
               ) -> KeptFiles:
    """Walk `folder`: every file and subfolder a folder save keeps (see the module).

    Parameters
    ----------
    model_weights : tells the top-level names that are the model's own weights (left out
        without a note: the save writes them anew)
    """
    kept = KeptFiles()
    roots = containment_roots(folder)
    modules = _module_folders(folder)
    visited = {Path(os.path.realpath(folder))}
    _walk(folder, "", roots, modules, visited, kept, model_weights)
    return kept


def _walk(folder: Path, prefix: str, roots: list[Path], modules: set[str],
          visited: set[Path], kept: KeptFiles, model_weights: Callable[[str], bool]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        kept.skipped.append((prefix or ".", f"cannot be read ({error.strerror or error})"))
        return
    top = prefix == ""
    module = prefix.split("/")[0] in modules if prefix else False
    for entry in entries:
        name = entry.name
        relative = f"{prefix}{name}"
        if name.startswith(".") and TEMP_MARK in name:
            continue  # a temporary of an unfinished save
        real = Path(os.path.realpath(entry.path))
        if entry.is_symlink() and not _within(real, roots):
            target = os.readlink(entry.path)
            kept.skipped.append((relative, f"a link to {target}, outside the folder"))
            continue
        try:
            info = os.stat(real)
        except OSError:
            why = (f"a link to {os.readlink(entry.path)}, which does not exist"
                   if entry.is_symlink() else "vanished while it was read")
            kept.skipped.append((relative, why))
            continue
        if stat.S_ISDIR(info.st_mode):
            if (top and name in _TOOL_FOLDERS) or name == "__pycache__":
                kept.skipped.append((relative + "/", "a tool's folder, not the model's"))
            elif real in visited:
                kept.skipped.append((relative + "/", "a link back to a folder already copied"))
            else:
                kept.folders.append(relative)
                _walk(Path(entry.path), relative + "/", roots, modules, visited | {real}, kept,
                      model_weights)
            continue
        if not stat.S_ISREG(info.st_mode):
            kept.skipped.append((relative, "not a regular file"))
            continue
        if top and model_weights(name):
            continue
        if name.lower().endswith(WEIGHT_SUFFIXES) and not module:
            kept.skipped.append((relative, "weights or a torch file beside the model's (stale "
                                 "after an edit)"))
            continue
        kept.files[relative] = real


def copy_regular(real: Path, target: Path) -> None:
    """Copy the regular file `real` (a resolved path) to `target` byte for byte, refusing
    anything that became a link or a special file since it was resolved."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        source = os.open(real, flags)
    except OSError as error:
        raise FileError(real, f"cannot be copied ({error.strerror or error})") from None
    try:
        if not stat.S_ISREG(os.fstat(source).st_mode):
            raise FileError(real, "is not a regular file; not copied")
        with open(source, "rb", closefd=False) as reader, open(target, "wb") as writer:
            shutil.copyfileobj(reader, writer, 2**20)
    finally:
        os.close(source)


def skipped_note(skipped: list[tuple[str, str]]) -> str | None:
    """One note listing what a folder save left out, or None."""
    if not skipped:
        return None
    listed = "; ".join(f"{name} ({why})" for name, why in skipped[:8])
    more = f"; and {len(skipped) - 8} more" if len(skipped) > 8 else ""
    return f"not copied from the opened folder: {listed}{more}"


def _module_folders(folder: Path) -> set[str]:
    """Subfolders that sentence-transformers' `modules.json` names as modules (their files,
    weights included, belong to other modules of the pipeline and are kept as they are)."""
    try:
        document = read_folder_json(folder, "modules.json")
    except FileError:  # none, or one that leaves the folder (the walk says so)
        return set()
    if not isinstance(document, list):
        return set()
    names = set()
    for module in document:
        path = module.get("path") if isinstance(module, dict) else None
        if isinstance(path, str) and path and "/" not in path.strip("/") \
                and path not in (".", ".."):
            names.add(path.strip("/"))
    return names


def names_of(folder: Path, model_weights: Callable[[str], bool]) -> list[str]:
    """The relative paths of the files a folder save would keep (for `session.source`)."""
    return list(kept_files(folder, model_weights).files)
