"""Export the edited model for deployment: ExportedProgram (.pt2), ONNX, TorchScript.

Every export is verified before it is reported written: the artifact is loaded back
with its own runtime and run on fresh inputs, and its outputs are compared with the
live model's. See docs/export.md.
"""

from __future__ import annotations

from .options import FORMATS, ExportOptions
from .report import ExportReport
from .run import export_model

__all__ = ["FORMATS", "ExportOptions", "ExportReport", "export_model"]
