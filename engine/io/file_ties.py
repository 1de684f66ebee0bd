"""Tied tensors in files: how a save stores them, and how opening ties them again.

A tie (one tensor under several names) can be stored three ways, each for the loader
its user loads the file with:

- **every name** (`ties="every_name"`, the default): each name gets its own copy of the
  bytes, so `model.load_state_dict(safetensors.torch.load_file(path))` loads strictly into
  a model that does not tie them (a torchvision model after a user tie). The tie is
  recorded in `weightsmith.ties` and restored on opening when the copies are equal.
- **once** (`ties="once"`): the first name only, the others in `weightsmith.aliases`:
  `safetensors.torch.load_model` loads it into a model that ties them itself, and
  Weightsmith ties the names again.
- **Hugging Face** (`ties="hf"`, the default for a folder of a model whose config ties
  them): the names transformers ties itself (`lm_head.weight` to the input embedding)
  are left out, as `save_pretrained` does, so `from_pretrained` ties them again; other
  ties are stored under every name.

`.pt` files hold every name over one storage (torch.save), which every loader reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import FileError
from .json_files import JSONProblem, parse_json
from .sources import CHUNK, TensorSource
from .stored_items import StoredItem

if TYPE_CHECKING:
    from ..checkpoint import Slot
    from ..document import Document

EVERY_NAME = "every_name"
ONCE = "once"
HF = "hf"
TIE_MODES = (EVERY_NAME, ONCE, HF)
#: metadata key: groups of names stored under every name that are one tensor
TIES_KEY = "weightsmith.ties"
#: what each mode is written for, as said in the dialog and the CLI
LOADERS = {
    EVERY_NAME: "strict load_state_dict(load_file(...)) loads it into any model",
    ONCE: "safetensors.torch.load_model loads it into a model that ties them",
    HF: "from_pretrained ties them again",
}


@dataclass
class TiePlan:
    """What a save stores for tied tensors.

    Attributes
    ----------
    mode : 'every_name', 'once' or 'hf'
    items : the items to write (duplicates of tied tensors under every name stored)
    aliases : {name left out: stored name} for `weightsmith.aliases`
    groups : names stored under every name that are one tensor, for `weightsmith.ties`
    groups_count : tie groups of the document
    extra_bytes : bytes the copies of tied tensors add
    """

    mode: str
    items: list[StoredItem]
    aliases: dict[str, str] = field(default_factory=dict)
    groups: list[list[str]] = field(default_factory=list)
    groups_count: int = 0
    extra_bytes: int = 0
    loads_with: str = ""

    def summary(self) -> dict[str, Any]:
        """JSON-ready: for the save's result (`result["ties"]`)."""
        return {"mode": self.mode, "groups": self.groups_count, "extra_bytes": self.extra_bytes,
                "left_out": sorted(self.aliases),
                "loads_with": self.loads_with or LOADERS[self.mode]}


def describe_ties(summary: dict[str, Any]) -> str:
    """One line: what a save did with tied tensors (a `TiePlan.summary`), and for which
    loader."""
    count = summary["groups"]
    groups = f"{count} group{'s' if count != 1 else ''}"
    if summary["mode"] == ONCE:
        how = "stored once (the other names in metadata)"
    elif summary["mode"] == HF:
        how = f"stored as transformers does (left out: {', '.join(summary['left_out']) or 'none'})"
    else:
        how = "stored under every name"
    extra = f", +{summary['extra_bytes'] / 2**20:,.2f} MiB" if summary["extra_bytes"] else ""
    return f"{groups} {how}{extra}: {summary['loads_with']}"


def hf_tied_targets(document: Document) -> dict[str, str] | None:
    """{name transformers ties itself: its source} for a Hugging Face model or folder, or
    None when the document is not one (or transformers cannot tell)."""
    # A transformers model says it itself; anything else (a checkpoint, a model that
    # cannot tell) is answered by the folder's config.json, which the model was made from.
    model = document.model
    mapping = getattr(model, "all_tied_weights_keys", None)
    if mapping is None and hasattr(model, "get_expanded_tied_weights_keys"):
        try:
            mapping = model.get_expanded_tied_weights_keys(all_submodels=True)
        except Exception:  # transformers' own failure: treat as unknown
            mapping = None
    if isinstance(mapping, dict):
        return dict(mapping)
    folder = document.source.get("folder")
    return _config_tied_targets(Path(folder)) if folder else None


def _config_tied_targets(folder: Path) -> dict[str, str] | None:
    """The ties a folder's config.json makes, from its architecture class's declared
    `_tied_weights_keys` (plain names only; patterns need the model: unknown)."""
    from .hf_folder import read_config

    try:
        config = read_config(folder)
    except FileError:
        return None
    if config.get("tie_word_embeddings") is False:
        return {}
    names = config.get("architectures")
    if not isinstance(names, list) or not names or not isinstance(names[0], str):
        return None
    try:
        import transformers
    except ImportError:
        return None
    model_class = getattr(transformers, names[0], None)
    mapping = getattr(model_class, "_tied_weights_keys", None)
    if not isinstance(mapping, dict):
        return None
    plain = all(isinstance(k, str) and isinstance(v, str) and k.replace(".", "").replace(
        "_", "").isalnum() and v.replace(".", "").replace("_", "").isalnum()
        for k, v in mapping.items())
    return dict(mapping) if plain else None


def default_mode(document: Document, folder_output: bool) -> str:
    """'hf' for a folder of a model whose config ties tensors, else 'every_name'."""
    if folder_output:
        targets = hf_tied_targets(document)
        if targets:
            return HF
    return EVERY_NAME


def plan_ties(document: Document, items: list[StoredItem], mode: str | None,
              folder_output: bool, path: Path) -> TiePlan:
    """Decide, for every tie group of `items`, which names are stored.

    Raises
    ------
    FileError : an unknown mode, or 'hf' for a document that is not a Hugging Face model
    """
    if mode is None:
        mode = default_mode(document, folder_output)
    if mode not in TIE_MODES:
        raise FileError(path, f"ties: unknown '{mode}' (use {', '.join(TIE_MODES)})")
    targets: dict[str, str] = {}
    if mode == HF:
        found = hf_tied_targets(document)
        if found is None:
            raise FileError(path, "ties: 'hf' needs a Hugging Face model or folder (its "
                            "config says which tensors transformers ties)")
        targets = found
    plan = TiePlan(mode, [])
    for item in items:
        if not item.aliases:
            plan.items.append(item)
            continue
        plan.groups_count += 1
        names = [item.name, *item.aliases]
        if mode == ONCE:
            plan.items.append(item)
            plan.aliases.update({alias: item.name for alias in item.aliases})
            continue
        left_out = [name for name in names if mode == HF and targets.get(name) in names
                    and targets.get(name) != name]
        stored = [name for name in names if name not in left_out]
        plan.aliases.update({name: stored[0] for name in left_out})
        first = StoredItem(stored[0], item.shape, item.dtype, row=item.row)
        plan.items.append(first)
        for name in stored[1:]:
            plan.items.append(StoredItem(name, item.shape, item.dtype, row=item.row))
            plan.extra_bytes += item.nbytes
        if len(stored) > 1:
            plan.groups.append(stored)
    return plan


def tie_choices(document: Document, folder_output: bool) -> list[dict[str, Any]]:
    """The ways the document's ties can be stored, for a dialog: each with its `mode`, the
    `extra_bytes` it costs, the names it leaves out, the loader it is for, and whether it
    is the `default`. Empty when the document has no ties."""
    from .stored_items import stored_items

    items = stored_items(document)
    if not any(item.aliases for item in items):
        return []
    default = default_mode(document, folder_output)
    choices = []
    for mode in TIE_MODES:
        try:
            plan = plan_ties(document, items, mode, folder_output, Path("."))
        except FileError:
            continue  # 'hf' for a document that is not a Hugging Face model
        choices.append({**plan.summary(), "default": mode == default})
    return choices


# ---------------------------------------------------------------------- opening
def restore_ties(path: Path, entries: dict[str, Slot], text: Any) -> list[str]:
    """Tie names a save stored under every name (`weightsmith.ties`) again, when their
    stored copies are byte for byte equal. Returns notes about groups left apart."""
    if text is None:
        return []
    try:
        groups = parse_json(text) if isinstance(text, str) else text
    except JSONProblem as error:
        raise FileError(path, f"metadata '{TIES_KEY}' is not valid JSON ({error})") from None
    if not isinstance(groups, list) or not all(
            isinstance(group, list) and all(isinstance(name, str) for name in group)
            for group in groups):
        raise FileError(path, f"metadata '{TIES_KEY}' must be a list of lists of names")
    notes = []
    for group in groups:
        present = [name for name in group if name in entries]
        if len(present) < 2:
            continue
        first = entries[present[0]]
        for name in present[1:]:
            other = entries[name]
            if other is first:
                continue
            if other.shape != first.shape or other.dtype != first.dtype \
                    or not _same_bytes(first, other):
                notes.append(f"'{name}' is no longer equal to '{present[0]}' (edited by "
                             "another tool?): kept apart, not tied")
                continue
            entries[name] = first
    return notes


def _same_bytes(first: Slot, other: Slot) -> bool:
    """Compare two stored tensors without loading them when both are still on disk."""
    a, b = first.source, other.source
    if not first.loaded and not other.loaded and isinstance(a, TensorSource) \
            and isinstance(b, TensorSource):
        done = 0
        while done < a.nbytes:
            count = min(CHUNK, a.nbytes - done)
            if a.file.read(a.offset + done, count) != b.file.read(b.offset + done, count):
                return False
            done += count
        return True
    left = first.tensor.detach().contiguous().reshape(-1).view(torch.uint8)
    right = other.tensor.detach().contiguous().reshape(-1).view(torch.uint8)
    return torch.equal(left, right)


def retie_model(model: nn.Module, groups: list[list[str]]) -> list[list[str]]:
    """Tie, in a model just filled from a file, the names the file holds as one tensor and
    the model keeps apart (a user's tie), as the `tie` edit does: the other names point at
    the first one's very Parameter. Returns the groups tied."""
    registry: dict[str, tuple[dict[str, Any], str, str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for kind, tensors in (("parameter", module._parameters), ("buffer", module._buffers)):
            for leaf, tensor in tensors.items():
                if tensor is not None:
                    registry[f"{path}.{leaf}" if path else leaf] = (tensors, leaf, kind)
    tied = []
    for group in groups:
        present = [name for name in group if name in registry]
        if len(present) < 2:
            continue
        tensors, leaf, kind = registry[present[0]]
        source = tensors[leaf]
        done = [present[0]]
        for name in present[1:]:
            other_tensors, other_leaf, other_kind = registry[name]
            other = other_tensors[other_leaf]
            if other is source:
                done.append(name)
                continue
            if other_kind != kind or other.shape != source.shape or other.dtype != source.dtype:
                continue
            other_tensors[other_leaf] = source
            done.append(name)
        if len(done) > 1:
            tied.append(done)
    return tied
