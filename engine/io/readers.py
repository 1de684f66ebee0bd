"""Read any supported checkpoint into named Slots, lazily where the format allows.

Safetensors files (single or sharded) are read header first: every Slot is lazy and
remembers where its bytes are, so a listing reads no tensor data. Torch pickles are
read with `weights_only=True` and memory-mapped; a nested checkpoint's other entries
(epoch, optimizer state, hyper-parameters) are kept in the Origin for saving back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import CheckpointState, Slot
from ..collection import collection_paused
from ..errors import FileError
from ..progress import Progress, report
from . import formats, nested
from .file_ties import TIES_KEY, restore_ties
from .json_files import JSONProblem, parse_json
from .origin import Origin
from .safetensors_header import read_header
from .sharded import read_index
from .sources import StoredFile
from .torch_files import load_pickle, load_torchscript

#: safetensors metadata (and index metadata) keys written by Weightsmith
ALIASES_KEY = "weightsmith.aliases"
FROZEN_KEY = "weightsmith.frozen"
RECIPE_KEY = "weightsmith.recipe"
#: in every shard Weightsmith writes: the id of that save
SAVE_ID_KEY = "weightsmith.save_id"
#: in the index: {shard file: the save id its header must carry} (null: not checked)
SHARDS_KEY = "weightsmith.shards"


@dataclass
class Loaded:
    """What a file holds, before a Session is made of it.

    Attributes
    ----------
    state : the tensors (tied names share a Slot) and the wrapper's other entries
    source : JSON-ready description for `Session.source`
    origin : the non-JSON objects a save needs
    model : a whole module, when a trusted file held one at the chosen key
    candidates : the nested state dicts found (see `engine.io.nested`)
    """

    state: CheckpointState
    source: dict[str, Any]
    origin: Origin
    model: nn.Module | None = None
    candidates: list[str] = field(default_factory=list)


def read_detected(found: formats.Detected, *, trust: bool = False, choice: str | None = None,
                  progress: Progress | None = None) -> Loaded:
    """Read the weights `found` names (see `formats.detect`)."""
    if found.kind == formats.SAFETENSORS:
        loaded = read_safetensors(found.path, progress)
    elif found.kind == formats.SAFETENSORS_INDEX:
        loaded = read_safetensors_index(found.path, progress)
    elif found.kind == formats.PT_INDEX:
        loaded = read_pt_index(found.path, trust, progress)
    elif found.kind == formats.TORCHSCRIPT:
        loaded = read_torchscript(found.path, trust)
    else:
        loaded = read_pt(found.path, trust=trust, choice=choice, progress=progress)
    loaded.source.setdefault("path", str(found.path))
    return loaded


# ---------------------------------------------------------------------- safetensors
def read_safetensors(path: Path, progress: Progress | None = None) -> Loaded:
    """Read the header of one .safetensors file; every tensor stays on disk until used."""
    report(progress, 0.0, f"Reading {path.name}")
    file = StoredFile(path)
    with collection_paused():
        header = read_header(file)
        entries = {name: _lazy_slot(source) for name, source in header.sources.items()}
    file.header_metadata = dict(header.metadata)
    metadata = dict(header.metadata)
    _restore_aliases(path, entries, metadata.get(ALIASES_KEY))
    notes = restore_ties(path, entries, metadata.get(TIES_KEY))
    report(progress, 1.0, f"Read {path.name}")
    source = {"path": str(path), "format": formats.SAFETENSORS, "layout": "single",
              "metadata": metadata}
    if notes:
        source["notes"] = notes
    loaded = Loaded(CheckpointState(entries), source, Origin(files=[file], metadata=metadata))
    loaded.origin.recorded_ties = loaded.state.tie_groups()
    return loaded


def read_safetensors_index(path: Path, progress: Progress | None = None) -> Loaded:
    """Read every shard header of a sharded set; tensors stay on disk until used."""
    index = read_index(path)
    entries: dict[str, Slot] = {}
    files = []
    for position, shard in enumerate(index.shards):
        report(progress, position / len(index.shards), f"Reading {shard}")
        file = StoredFile(index.folder / shard)
        with collection_paused():
            header = read_header(file)
        file.header_metadata = dict(header.metadata)
        files.append(file)
        for name, source in header.sources.items():
            if name in entries:
                raise FileError(file.path, f"tensor '{name}' is also in another shard")
            entries[name] = _lazy_slot(source)
    _check_one_save(path, index.metadata.get(SHARDS_KEY), files)
    missing = [name for name, shard in index.weight_map.items()
               if name not in entries or entries[name].source.file.path.name != shard]
    if missing:
        name = missing[0]
        raise FileError(path, f"the index puts '{name}' in {index.weight_map[name]}, "
                        "which does not hold it")
    shard_of = {name: slot.source.file.path.name for name, slot in entries.items()}
    _restore_aliases(path, entries, index.metadata.get(ALIASES_KEY))
    notes = restore_ties(path, entries, index.metadata.get(TIES_KEY))
    report(progress, 1.0, f"Read {len(index.shards)} shards")
    source = {"path": str(path), "format": formats.SAFETENSORS_INDEX, "layout": "sharded",
              "shards": index.shards, "metadata": _json_ready(index.metadata)}
    if notes:
        source["notes"] = notes
    origin = Origin(files=files, metadata=index.metadata, shards=index.shards,
                    shard_of=shard_of)
    loaded = Loaded(CheckpointState(entries), source, origin)
    origin.recorded_ties = loaded.state.tie_groups()
    return loaded


def _check_one_save(path: Path, recorded: Any, files: list[StoredFile]) -> None:
    """Refuse a set whose shards come from different saves: each shard must carry the save
    id the index records for it (sets written by other tools record none)."""
    if recorded is None:
        return
    if not isinstance(recorded, dict):
        raise FileError(path, f"metadata '{SHARDS_KEY}' must map shard files to save ids")
    by_name = {file.path.name: file for file in files}
    for shard, expected in recorded.items():
        file = by_name.get(shard)
        if expected is None or file is None:
            continue
        found = (file.header_metadata or {}).get(SAVE_ID_KEY)
        if found != expected:
            raise FileError(path, f"mixed set: shard '{shard}' was written by another save "
                            f"(save id {found or 'none'}, the index expects {expected}); the "
                            "folder holds parts of two saves (if a tool rewrote that shard on "
                            f"purpose, remove '{SHARDS_KEY}' from the index's metadata)")


def _lazy_slot(source: Any) -> Slot:
    return Slot(loader=source.load, shape=source.shape, dtype=source.dtype, source=source)


def _restore_aliases(path: Path, entries: dict[str, Slot], text: Any) -> None:
    """Re-tie names that a Weightsmith save stored once (`weightsmith.aliases`)."""
    if text is None:
        return
    try:
        aliases = parse_json(text) if isinstance(text, str) else text
    except JSONProblem:
        raise FileError(path, f"metadata '{ALIASES_KEY}' is not valid JSON") from None
    if not isinstance(aliases, dict):
        raise FileError(path, f"metadata '{ALIASES_KEY}' must map alias names to stored names")
    for alias, stored in aliases.items():
        if not isinstance(stored, str) or stored not in entries:
            raise FileError(path, f"metadata '{ALIASES_KEY}' ties '{alias}' to '{stored}', "
                            "which the file does not hold")
        if alias in entries:
            raise FileError(path, f"metadata '{ALIASES_KEY}' names '{alias}', which is also "
                            "stored")
        entries[alias] = entries[stored]


# ---------------------------------------------------------------------- torch pickles
def read_pt(path: Path, *, trust: bool = False, choice: str | None = None,
            progress: Progress | None = None) -> Loaded:
    """Read a torch.save file (weights_only unless trusted) and pick its state dict."""
    report(progress, 0.0, f"Reading {path.name}")
    data = load_pickle(path, trust=trust)
    report(progress, 0.9, f"Read {path.name}")
    candidates = nested.find_candidates(data)
    source: dict[str, Any] = {"path": str(path), "format": formats.PT, "trusted": trust,
                              "candidates": candidates}
    if not candidates:
        loose = nested.loose_tensors(data)
        if not loose:
            raise FileError(path, _no_state_dict(data))
        # Tensors mixed with other entries at the top ({"w": t, "step": 3}).
        extras = {key: value for key, value in data.items() if key not in loose}
        source["nested_key"] = None
        source["loose"] = True
        source["extras"] = [str(key) for key in extras]
        state = CheckpointState.from_tensors(_plain(path, loose))
        state.extras = extras
        return Loaded(state, source, Origin(wrapper=data, key_path=()), candidates=[])
    chosen = candidates[0] if choice is None else choice
    if chosen not in candidates:
        listed = ", ".join(repr(c) for c in candidates)
        raise FileError(path, f"has no state dict at '{choice}' (found: {listed})")
    path_keys = nested.key_path(chosen)
    value = nested.get_path(data, path_keys)
    source["nested_key"] = chosen or None
    origin = Origin(wrapper=data if path_keys else None, key_path=path_keys)
    if isinstance(value, nn.Module):
        tensors = value.state_dict(keep_vars=True)
        state = CheckpointState.from_tensors(_plain(path, tensors))
        model = value
    else:
        state = CheckpointState.from_tensors(_plain(path, dict(value)))
        model = None
    if path_keys:
        state.extras = {key: item for key, item in data.items() if key != path_keys[0]}
        source["extras"] = [str(key) for key in state.extras]
    return Loaded(state, source, origin, model=model, candidates=candidates)


def _plain(path: Path, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Refuse tensors that cannot be edited as dense values, naming the first one."""
    for name, tensor in tensors.items():
        problem = tensor_problem(tensor)
        if problem is not None:
            raise FileError(path, f"tensor '{name}' {problem}")
    return tensors


def tensor_problem(tensor: torch.Tensor) -> str | None:
    """Why a tensor read from a file cannot be edited here, or None for a dense tensor."""
    if tensor.is_nested:
        return "is a nested tensor; only dense tensors can be edited"
    if tensor.layout != torch.strided:
        layout = str(tensor.layout).removeprefix("torch.")
        return (f"is {layout} (not dense); only dense tensors can be edited (save it with "
                ".to_dense())")
    if tensor.device.type == "meta":
        return "is on the meta device: the file holds its shape but no values"
    try:
        tensor.untyped_storage()
    except Exception:
        return f"has no storage that can be read (a {type(tensor).__name__})"
    return None


def _no_state_dict(data: Any) -> str:
    if isinstance(data, torch.Tensor):
        return "holds a single tensor, not a state dict (names mapped to tensors)"
    return f"holds no state dict (found a {type(data).__name__}, not names mapped to tensors)"


def read_pt_index(path: Path, trust: bool, progress: Progress | None = None) -> Loaded:
    """Read a sharded pytorch_model-0000i-of-0000n.bin set through its index."""
    index = read_index(path)
    tensors: dict[str, torch.Tensor] = {}
    shard_of: dict[str, str] = {}
    for position, shard in enumerate(index.shards):
        report(progress, position / len(index.shards), f"Reading {shard}")
        data = load_pickle(index.folder / shard, trust=trust)
        if not nested.is_state_dict(data):
            raise FileError(index.folder / shard, "is not a state dict (names mapped to tensors)")
        _plain(index.folder / shard, data)
        for name, tensor in data.items():
            if name in tensors:
                raise FileError(index.folder / shard, f"tensor '{name}' is also in another shard")
            tensors[name] = tensor
            shard_of[name] = shard
    missing = [name for name in index.weight_map if name not in tensors]
    if missing:
        raise FileError(path, f"the index names '{missing[0]}' but no shard holds it")
    source = {"path": str(path), "format": formats.PT_INDEX, "layout": "sharded",
              "shards": index.shards, "metadata": _json_ready(index.metadata)}
    return Loaded(CheckpointState.from_tensors(tensors), source,
                  Origin(metadata=index.metadata, shard_of=shard_of, shards=index.shards))


def read_torchscript(path: Path, trust: bool) -> Loaded:
    """A TorchScript archive's tensors (its code is loaded only with trust)."""
    if not trust:
        from .trust import refusal_message

        raise FileError(path, refusal_message(path))
    module = load_torchscript(path)
    source = {"path": str(path), "format": formats.TORCHSCRIPT, "trusted": True}
    return Loaded(CheckpointState.from_tensors(dict(module.state_dict())), source, Origin())


def _json_ready(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value
