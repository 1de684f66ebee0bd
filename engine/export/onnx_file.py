"""ONNX: `torch.onnx.export(..., dynamo=True)`, checked with onnxruntime.

What onnxruntime, TensorRT and Netron read. Needs the `deploy` extra (onnx,
onnxscript, onnxruntime); the core install does not. The file is checked by an
onnxruntime `InferenceSession` on the CPU, the runtime most deployments start from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from .base import Exporter
from .options import check_opset, require_onnx
from .pt2 import batch_dimension


class OnnxExporter(Exporter):
    """ONNX through the exporter PyTorch recommends (torch.export, then onnxscript)."""

    name = "onnx"
    label = "ONNX"
    runtime = "onnxruntime InferenceSession (CPU)"
    tool = "torch.export (the first step of ONNX export)"

    def export(self, module: nn.Module, example: torch.Tensor, adapted: bool,
               second: torch.Tensor) -> None:
        require_onnx()
        check_opset(self.options.opset)
        options = {"dynamo": True, "verbose": False,
                   "dynamic_shapes": batch_dimension(self.options.dynamic_batch)}
        if self.options.opset is not None:
            options["opset_version"] = self.options.opset
        self.program = torch.onnx.export(module, (example,), **options)
        self.opset = next((entry.version for entry in self.program.model_proto.opset_import
                           if entry.domain in ("", "ai.onnx")), None)
        if self.options.opset is not None and self.opset != self.options.opset:
            raise ExportError(f"export.opset: asked for {self.options.opset}, the exporter "
                              f"wrote {self.opset}")
        self.method = f"torch.onnx.export(dynamo=True), opset {self.opset}"

    def save(self, path: Path) -> None:
        # Models over protobuf's 2 GB limit get their weights in `path.name + ".data"`
        # beside it (the exporter decides); the caller moves both into place.
        self.program.save(str(path))
        self.path = path

    def load(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: the verdict is ours to report
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.path = path

    def run(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        outputs = self.session.run(None, {self.input_name: inputs.detach().cpu().numpy()})
        return [torch.from_numpy(np.asarray(output)) for output in outputs]

    def stored_copies(self, names: list[str], tensor: torch.Tensor) -> int:
        """Initializers holding the tied values (as they are, or transposed): ONNX names
        its initializers after the exporter's values, not the model's, so copies are
        found by content."""
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(self.path), load_external_data=True)
        values = tensor.detach().cpu()
        if values.dtype == torch.bfloat16:
            values = values.float()
        values = values.numpy()
        candidates = [values, values.T] if values.ndim == 2 else [values]
        copies = 0
        for initializer in model.graph.initializer:
            if int(np.prod(initializer.dims)) != values.size:
                continue
            stored = numpy_helper.to_array(initializer)
            if any(stored.shape == candidate.shape and np.array_equal(stored, candidate)
                   for candidate in candidates):
                copies += 1
        return copies
