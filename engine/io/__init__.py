"""Reading and writing checkpoint files: formats, safety checks, atomic writes.

io returns what it read (a document) and takes what it writes (a document and its
recipe); it never imports the Session or the edits (an import-linter contract).
Entry points: `opening.read_document` (behind `Session.open`), `saving.save_document`
(behind `Session.save`), `opening.inspect_candidates`, `opening.needs_trust`,
`opening.detect_prefix`, `trust.code_listing`, and `read_state_dict` for the `load`
edit. One module per purpose: `formats` (what a path holds), `torch_formats` (torch's
file kinds), `safetensors_header` (checked headers), `sources` (lazy tensor bytes),
`sharded` (index files), `torch_files` (weights_only pickles), `trust`, `nested` (state
dicts inside checkpoints), `readers`, `fill` (tensors into a model), `hf_folder`,
`stored_items`, `shard_plan`, `safetensors_writer`, `torch_writer`, `atomic`, `origin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state_files import read_state_dict

__all__ = ["read_state_dict"]


def __getattr__(name: str) -> Any:
    # On first use (PEP 562): `engine.io.atomic` and the journal load without torch.
    if name == "read_state_dict":
        from .state_files import read_state_dict

        return read_state_dict
    raise AttributeError(f"module 'engine.io' has no attribute {name!r}")
