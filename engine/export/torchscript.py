"""TorchScript: `torch.jit.script` (or `torch.jit.trace`), saved with `save`.

Still what many C++ (libtorch) and mobile servers load. Scripting compiles the
model's Python, control flow included; tracing records the ops one example runs
(branches and loops fixed by that example), and takes what scripting cannot (most
Hugging Face models). `auto` scripts, and traces when scripting fails. A trace is
checked by torch.jit's own trace checker on a second, different input, and then
verified like every export (the loaded module run with `torch.jit.optimized_execution(False)`;
see `TorchScriptExporter.run`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..training.model_io import first_line
from .base import Exporter, distinct_storages
from .verify import output_tensors


class TorchScriptExporter(Exporter):
    """torch.jit's ScriptModule."""

    name = "torchscript"
    label = "TorchScript"
    runtime = "torch.jit.load"
    tool = "torch.jit"

    def export(self, module: nn.Module, example: torch.Tensor, adapted: bool,
               second: torch.Tensor) -> None:
        method = self.options.torchscript_method
        if method == "script" or (method == "auto" and not adapted):
            try:
                self.module = torch.jit.script(module)
                self.method = "torch.jit.script"
                return
            except Exception as error:
                if method == "script":
                    raise
                self.notes.append(f"torch.jit.script failed ({first_line(error)[:120]}); "
                                  "traced instead: Python control flow follows the example")
        with torch.no_grad():
            self.module = torch.jit.trace(module, (example,), check_inputs=[(second,)],
                                          strict=False)
        self.method = "torch.jit.trace"

    def save(self, path: Path) -> None:
        self.module.save(str(path))

    def load(self, path: Path) -> None:
        self.loaded = torch.jit.load(str(path), map_location=_device_of(self.module))

    def run(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        # The loaded module's own graph, run by TorchScript's interpreter with the
        # profiling executor's passes off: a server's first call is such an unoptimized
        # (profiling) run too, and on the CPU the optimized graph calls the same aten
        # kernels (bit-identical outputs for resnet50 across six calls, batches 1 and 2,
        # checked with torch 2.14). Profiling and optimizing cost 3-4x a forward pass
        # on each of the first calls, more than the check itself. The setting is the
        # calling thread's only.
        with torch.no_grad(), torch.jit.optimized_execution(False):
            return output_tensors(self.loaded(inputs))

    def stored_copies(self, names: list[str], tensor: torch.Tensor) -> int:
        stored = self.loaded.state_dict()
        return distinct_storages([stored[name] for name in names if name in stored])


def _device_of(module: torch.jit.ScriptModule) -> torch.device:
    for tensor in [*module.parameters(), *module.buffers()]:
        return tensor.device
    return torch.device("cpu")
