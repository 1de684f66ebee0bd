"""ExportedProgram (.pt2): `torch.export.export`, saved with `torch.export.save`.

What ExecuTorch, AOTInductor and Model Explorer read. The program is checked by
`torch.export.load` and its `module()`, the way a deployment reloads it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .base import Exporter, distinct_storages
from .schema_hints import cached_schema_hints
from .verify import output_tensors


def batch_dimension(dynamic: bool) -> tuple[dict[int, torch.export.Dim], ...] | None:
    """`dynamic_shapes` for one positional input whose dimension 0 is the batch."""
    if not dynamic:
        return None
    return ({0: torch.export.Dim("batch", min=1)},)


class Pt2Exporter(Exporter):
    """torch.export's ExportedProgram."""

    name = "pt2"
    label = "ExportedProgram (.pt2)"
    runtime = "torch.export.load"
    tool = "torch.export"

    def export(self, module: nn.Module, example: torch.Tensor, adapted: bool,
               second: torch.Tensor) -> None:
        self.program = torch.export.export(
            module, (example,), dynamic_shapes=batch_dimension(self.options.dynamic_batch))
        self.method = "torch.export.export"

    def save(self, path: Path) -> None:
        torch.export.save(self.program, path)

    def load(self, path: Path) -> None:
        with cached_schema_hints():  # the same load, without 10,000 repeated lookups
            self.loaded = torch.export.load(path)
        self.callable = self.loaded.module()

    def run(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return output_tensors(self.callable(inputs))

    def stored_copies(self, names: list[str], tensor: torch.Tensor) -> int:
        stored = {**self.loaded.state_dict, **self.loaded.constants}
        found = [value for name, value in stored.items()
                 if name in names and isinstance(value, torch.Tensor)]
        return distinct_storages(found)
