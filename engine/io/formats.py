"""Tell what a path holds: a safetensors file, a sharded set, a torch pickle, TorchScript,
or a Hugging Face folder; by content where the name does not say.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import FileError
from .folder_files import resolve_inside
from .json_files import parse_json
from .torch_formats import ZIP_MAGIC, is_torchscript

SAFETENSORS = "safetensors"
SAFETENSORS_INDEX = "safetensors-index"  # model.safetensors.index.json + shards
PT = "pt"  # torch.save, zip or legacy format
PT_INDEX = "pt-index"  # pytorch_model.bin.index.json + shards
TORCHSCRIPT = "torchscript"

#: weight files of a Hugging Face folder, in the order transformers looks for them: a
#: single file before an index, so a folder that holds both reads as transformers reads it
HF_WEIGHT_NAMES = (
    ("model.safetensors", SAFETENSORS),
    ("model.safetensors.index.json", SAFETENSORS_INDEX),
    ("pytorch_model.bin", PT),
    ("pytorch_model.bin.index.json", PT_INDEX),
)
PT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


@dataclass(frozen=True)
class Detected:
    """What to read: `kind` of the weights at `path`; `folder` for a Hugging Face folder."""

    kind: str
    path: Path
    folder: Path | None = None


def detect(path: str | Path) -> Detected:
    """Find the weights a path names and their format.

    Raises
    ------
    FileError : missing path, empty file, or not a checkpoint format
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileError(path, "no such file or folder")
    if path.is_dir():
        return _detect_folder(path)
    if not path.is_file():
        raise FileError(path, "not a regular file")
    name = path.name.lower()
    if name.endswith(".safetensors.index.json"):
        return Detected(SAFETENSORS_INDEX, path)
    if name.endswith(".index.json"):
        return Detected(_index_kind(path), path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise FileError(path, f"cannot be read ({error.strerror or error})") from None
    if not head:
        raise FileError(path, "empty file (0 bytes)")
    if name.endswith(".safetensors"):
        return Detected(SAFETENSORS, path)
    if head.startswith(ZIP_MAGIC):
        return Detected(TORCHSCRIPT if is_torchscript(path) else PT, path)
    if head[:1] == b"\x80" or name.endswith(PT_SUFFIXES):
        return Detected(PT, path)  # the legacy torch.save format starts with a pickle
    if _looks_like_safetensors(head):
        return Detected(SAFETENSORS, path)
    raise FileError(path, "not a checkpoint (expected .safetensors, a torch.save file such as "
                    ".pt/.pth/.bin/.ckpt, or a Hugging Face model folder)")


def _looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 0 < length < 100_000_000 and head[8:9] == b"{"


def _index_kind(path: Path) -> str:
    try:
        weight_map = parse_json(path.read_text(encoding="utf-8")).get("weight_map", {})
        first = next(iter(weight_map.values()), "")
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):  # JSONProblem too
        raise FileError(path, "not a valid index file (expected JSON with a weight_map)") from None
    return SAFETENSORS_INDEX if str(first).endswith(".safetensors") else PT_INDEX


def _detect_folder(folder: Path) -> Detected:
    found = _find_in_folder(folder)
    # The weights must be the folder's own: a link that leaves it is refused.
    resolve_inside(found.path, folder)
    return found


def _find_in_folder(folder: Path) -> Detected:
    for name, kind in HF_WEIGHT_NAMES:
        if (folder / name).is_file() or (folder / name).is_symlink():
            return Detected(kind, folder / name, folder)
    # Other libraries name their weights differently (diffusers, adapters): one index
    # or one weights file in the folder is unambiguous.
    indexes = sorted(p for p in folder.glob("*.safetensors.index.json")
                     if not p.name.startswith("."))
    singles = sorted(p for p in folder.glob("*.safetensors") if not p.name.startswith("."))
    if len(indexes) == 1:
        single = indexes[0].with_name(indexes[0].name[: -len(".index.json")])
        if single.is_file():  # as transformers: the single file first
            return Detected(SAFETENSORS, single, folder)
        return Detected(SAFETENSORS_INDEX, indexes[0], folder)
    if not indexes and len(singles) == 1:
        return Detected(SAFETENSORS, singles[0], folder)
    pickles = sorted(p for p in folder.iterdir() if p.suffix in PT_SUFFIXES and p.is_file())
    if not indexes and not singles and len(pickles) == 1:
        return Detected(PT, pickles[0], folder)
    if indexes or len(singles) > 1 or len(pickles) > 1:
        raise FileError(folder, "holds several weight files and no model.safetensors(.index.json); "
                        "open one of the files instead")
    raise FileError(folder, "holds no weights (no model.safetensors, shards with an index, "
                    "or pytorch_model.bin)")
