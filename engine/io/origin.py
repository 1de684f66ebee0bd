"""What a save needs to know about the file a document was opened from, beyond its `source`.

`Session.source` is a JSON-ready summary (path, format, chosen nested key, prefix...)
that the GUI and `inspect --json` show. The objects behind it, which are not JSON (the
wrapper dict of a nested checkpoint with its optimizer state, the open files that
lazy tensors are read from), live in an `Origin` kept as the document's `origin`
(a checkpoint given an architecture hands it on to its model document).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sources import StoredFile


@dataclass
class Origin:
    """The non-JSON half of where a document came from.

    Attributes
    ----------
    wrapper : the whole object a nested .pt/.ckpt held (epoch, optimizer state,
        hyper-parameters), put back around the state dict on save; None when the file
        was a bare state dict
    key_path : where the state dict sits in `wrapper` (e.g. `("state_dict",)`)
    files : open files that lazy tensors are read from (kept open on purpose)
    metadata : safetensors `__metadata__` (single file) or the index's `metadata`
    shard_of : tensor name -> shard file name, for sharded sets (a save keeps the layout)
    shards : the shard file names in order, for sharded sets
    recorded_ties : names a Weightsmith save recorded as one tensor (its aliases and
        `weightsmith.ties` metadata), tied again in model mode whatever the model does
    """

    wrapper: Any = None
    key_path: tuple[str, ...] = ()
    files: list[StoredFile] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    shard_of: dict[str, str] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)
    recorded_ties: list[list[str]] = field(default_factory=list)
