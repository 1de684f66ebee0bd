"""Read any checkpoint file or folder as a document (`engine.opening.open_path` makes the
Session of it; io never imports the Session).

Functions for the GUI
---------------------
`read_document(path, ...)`
    The document, in checkpoint mode (no `arch`) or model mode.
`inspect_candidates(path, trust=False) -> list[str]`
    The nested state dicts of a .pt/.ckpt file, most likely first, for a picker; pass
    the one chosen as `read_document(..., choice=name)`.
`engine.io.trust.code_listing(path) -> CodeListing`
    What a file that needs trust would import (or why that cannot be known), for the
    confirmation dialog.
`needs_trust(path) -> bool`
    Whether opening `path` needs `trust=True` (ask the user first).
`detect_prefix(names) -> str`
    The DataParallel/compile prefix shared by all names ('module.', '_orig_mod.' or
    both), also found in `document.source["prefix"]` after opening; offer to reopen
    with `strip_prefix=True`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..allocation import check_build
from ..arch import DEFAULT_SEED, build_model
from ..checkpoint import CheckpointState, Slot
from ..document import CheckpointDocument, Document, ModelDocument
from ..errors import FileError
from ..progress import Progress, report
from . import folder_files, formats, hf_folder, nested
from .file_ties import retie_model
from .fill import load_checkpoint, report_problems
from .json_files import JSONProblem, parse_json
from .readers import FROZEN_KEY, Loaded, read_detected
from .set_commit import family_of_weights
from .torch_files import load_pickle

#: prefixes that wrappers add to every key: DataParallel/DDP and torch.compile
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def detect_prefix(names: list[str]) -> str:
    """The wrapper prefix every name shares ("" when none), e.g. 'module._orig_mod.'."""
    prefix = ""
    while names:
        rest = [name[len(prefix):] for name in names]
        found = next((p for p in WRAPPER_PREFIXES if all(name.startswith(p) for name in rest)),
                     None)
        if found is None:
            break
        prefix += found
    return prefix


def needs_trust(path: str | Path) -> bool:
    """Tell whether `path` can be opened only with `trust=True` (it would run code).

    Reads the file's pickle without running it; False for safetensors and folders of
    safetensors. The GUI asks this before opening, then shows
    `engine.io.trust.code_listing(path).unsafe` in its confirmation dialog.
    """
    found = formats.detect(path)
    if found.kind == formats.TORCHSCRIPT:
        return True
    if found.kind != formats.PT:
        return False
    from .trust import code_listing

    return code_listing(found.path).needs_trust


def inspect_candidates(path: str | Path, *, trust: bool = False) -> list[str]:
    """The nested state dicts a .pt/.pth/.ckpt file holds, most likely first.

    `['']` means the file is itself a state dict; `['state_dict', 'ema']` a wrapper with
    two; names of deeper ones join keys with '/'. Safetensors files and folders have
    exactly one: `['']`. Pass the chosen name to `read_document(path, choice=...)`.

    Raises
    ------
    FileError : as `read_document` (needs `trust` for files that would run code)
    """
    found = formats.detect(path)
    if found.kind != formats.PT:
        return [""]
    return nested.find_candidates(load_pickle(found.path, trust=trust))


def read_document(
    path: str | Path,
    *,
    arch: str | None = None,
    arch_args: dict[str, Any] | None = None,
    trust: bool = False,
    progress: Progress | None = None,
    choice: str | None = None,
    strip_prefix: bool | str | None = None,
    strict: bool = True,
    seed: int = DEFAULT_SEED,
) -> Document:
    """Read a checkpoint file or folder as a document (nothing is changed on disk).

    Parameters
    ----------
    path : .safetensors, sharded `*.safetensors.index.json`, .pt/.pth/.bin/.ckpt,
        TorchScript, or a folder (Hugging Face layout)
    arch : open in model mode with this architecture (`torchvision:NAME`, `file.py:Class`,
        `timm:NAME`, `hf` for the folder's config.json, `hf:FOLDER`); None: checkpoint mode
    arch_args : keyword arguments of the architecture
    trust : allow files that run code when loaded (whole pickled models, TorchScript,
        checkpoints with custom objects) and, with `arch='hf'`, a folder whose config
        needs its own Python files; never implied
    progress : reports reading; `cancel()` stops the open (raises Cancelled)
    choice : which nested state dict to use (see `inspect_candidates`); default the first
    strip_prefix : True strips the detected 'module.'/'_orig_mod.' prefix, text strips that
        prefix, False keeps names; None strips only when needed to fit `arch`
    strict : with `arch`, every model tensor must be in the file with its shape, and every
        tensor of the file must be in the model; for `hf`, after the names transformers'
        `from_pretrained` ignores (see `engine.io.hf_loading`), which the report lists
    seed : seed of the architecture's initial weights (for tensors the file lacks)

    Returns
    -------
    A ModelDocument (with `arch`, or a trusted whole module) or a CheckpointDocument;
    its `source` describes the file (path, format, nested_key, candidates, prefix,
    stripped_prefix, folder, other_files, layout, load_report), its `origin` what a
    save needs beyond it.

    Raises
    ------
    FileError : unreadable, damaged, unsafe without trust, or not fitting `arch` (strict)
    ArchError : the architecture cannot be built
    Cancelled : `progress.cancel()` was called
    """
    found = formats.detect(path)
    loaded = read_detected(found, trust=trust, choice=choice, progress=progress)
    source = loaded.source
    source["requested_path"] = str(path)
    if found.folder is not None:
        source["folder"] = str(found.folder)
        source["weights_name"] = found.path.name
        source["other_files"] = folder_files.names_of(
            found.folder, family_of_weights(found.path.name).owns)
        others = [name for name, _ in formats.HF_WEIGHT_NAMES
                  if name != found.path.name and (found.folder / name).exists()]
        if others:
            source.setdefault("notes", []).append(
                f"the folder also holds {', '.join(others)}; {found.path.name} is read, as "
                "transformers reads it (a save into the folder removes the others)")
    _strip(loaded, strip_prefix, arch is not None, found.path)
    frozen = _frozen_names(loaded)
    if frozen:
        source["frozen"] = sorted(frozen)
    report(progress, 1.0, "Building the document")
    if arch is not None:
        slots = {id(slot): slot for slot in loaded.state.entries.values()}  # ties once
        model = _build(arch, arch_args, seed, found.folder, trust,
                       sum(slot.nbytes for slot in slots.values()))
        fill = load_checkpoint(model, loaded.state.entries, frozen,
                               hf=hf_folder.is_hf_spec(arch))
        tied = retie_model(model, _file_ties(loaded, hf_folder.is_hf_spec(arch)))
        if tied:
            source["retied"] = tied
        # Every name is in the listing already; the report keeps what did not fit.
        source["load_report"] = {**fill, "loaded": len(fill["loaded"])}
        problems = report_problems(fill)
        if strict and problems:
            raise FileError(found.path, f"does not fit {arch}: " + "; ".join(problems)
                            + " (open with strict off, e.g. --no-strict, or without the "
                            "architecture)")
        source.update(arch=arch, arch_args=arch_args or None)
        return ModelDocument(model, source, loaded.origin)
    if loaded.model is not None:  # a trusted file held a whole module
        source["whole_model"] = type(loaded.model).__name__
        return ModelDocument(loaded.model, source, loaded.origin)
    return CheckpointDocument(loaded.state, source, loaded.origin)


def _file_ties(loaded: Loaded, hf: bool) -> list[list[str]]:
    """Names the file holds as one tensor, to tie again in the model: every tie of the file
    (a user's tie, saved by Weightsmith or torch.save); for `hf`, whose loading follows
    transformers, only those a Weightsmith save recorded."""
    groups = loaded.state.tie_groups()
    if not hf:
        return groups
    recorded = {tuple(group) for group in loaded.origin.recorded_ties}
    return [group for group in groups if tuple(group) in recorded]


def _build(arch: str, arch_args: dict[str, Any] | None, seed: int,
           folder: Path | None, trust: bool, file_bytes: int) -> nn.Module:
    """Build `arch` for a file of `file_bytes` of tensors, sized first when its size comes
    from untrusted numbers (a folder's config.json, arch-args): see `check_build`.
    Code the user trusted is not run twice for this; its size is the user's to judge."""
    if hf_folder.is_hf_spec(arch):
        config = hf_folder.config_folder(arch, folder)
        if not trust:
            check_build(lambda: hf_folder.build_hf_model(config, arch_args, seed),
                        file_bytes, f"{config / 'config.json'}")
        return hf_folder.build_hf_model(config, arch_args, seed, trust=trust)
    if arch_args:
        check_build(lambda: build_model(arch, arch_args, seed=seed), file_bytes,
                    f"{arch} with these arch-args")
    return build_model(arch, arch_args, seed=seed)


def _strip(loaded: Loaded, strip_prefix: bool | str | None, for_model: bool, path: Path) -> None:
    entries = loaded.state.entries
    detected = detect_prefix(list(entries))
    loaded.source["prefix"] = detected or None
    if strip_prefix is None:
        strip_prefix = for_model and bool(detected)
    if strip_prefix is False or strip_prefix == "":
        return
    prefix = detected if strip_prefix is True else str(strip_prefix)
    if not prefix:
        return
    renamed: dict[str, Slot] = {}
    for name, slot in entries.items():
        new = name[len(prefix):] if name.startswith(prefix) else name
        if new in renamed or not new:
            raise FileError(path, f"stripping '{prefix}' from '{name}' collides with another "
                            "name; open without stripping")
        renamed[new] = slot
    loaded.state = CheckpointState(renamed, loaded.state.extras)
    loaded.origin.shard_of = {name[len(prefix):] if name.startswith(prefix) else name: shard
                              for name, shard in loaded.origin.shard_of.items()}
    loaded.origin.recorded_ties = [[name[len(prefix):] if name.startswith(prefix) else name
                                    for name in group] for group in loaded.origin.recorded_ties]
    loaded.source["stripped_prefix"] = prefix


def _frozen_names(loaded: Loaded) -> set[str]:
    text = loaded.origin.metadata.get(FROZEN_KEY)
    if text is None:
        return set()
    try:
        names = parse_json(text) if isinstance(text, str) else text
    except JSONProblem:
        return set()
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else set()
