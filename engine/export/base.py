"""What every format's exporter does: export, save, load back with its own runtime, run.

One exporter object serves one export: `export` keeps the artifact, `save` writes it,
`load` reads the written file back with the runtime a deployment uses, `run` calls
that loaded artifact, and `stored_copies` tells how many copies of a tied tensor
the file holds (sharing checked in the artifact, not assumed).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .options import ExportOptions


class Exporter:
    """Base of the per-format exporters (see pt2.py, onnx_file.py, torchscript.py)."""

    #: the format's name (`--format`) and its name for people
    name = ""
    label = ""
    #: what loads the artifact back for verification
    runtime = ""
    #: what captures the model's graph, named in failure messages
    tool = ""

    def __init__(self, options: ExportOptions) -> None:
        self.options = options
        #: how the artifact was made, e.g. "torch.jit.script"; set by `export`
        self.method = ""
        #: facts worth telling the user (a fallback taken, a tracer's note)
        self.notes: list[str] = []

    def export(self, module: nn.Module, example: torch.Tensor, adapted: bool,
               second: torch.Tensor) -> None:
        """Make the artifact from `module` (in eval mode) traced with `example`.

        `second` is another input of the same shape (for a tracer's own check).
        `adapted` says the module is a view of the model with fixed call arguments (a
        Hugging Face model), which only tracing-based methods capture. Exceptions
        propagate; the caller explains them.
        """
        raise NotImplementedError

    def save(self, path: Path) -> None:
        """Write the artifact to `path` (a private folder's file; companions beside it)."""
        raise NotImplementedError

    def load(self, path: Path) -> None:
        """Read the written artifact back with the format's own runtime."""
        raise NotImplementedError

    def run(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """The loaded artifact's output tensors for `inputs`, in order."""
        raise NotImplementedError

    def stored_copies(self, names: list[str], tensor: torch.Tensor) -> int:
        """How many copies of the tied tensor named `names` the loaded artifact stores."""
        raise NotImplementedError


def distinct_storages(tensors: list[torch.Tensor]) -> int:
    """How many different memory blocks `tensors` live in."""
    return len({tensor.untyped_storage().data_ptr() for tensor in tensors})
