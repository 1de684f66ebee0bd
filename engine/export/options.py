"""What a deployment export is asked to do, validated before any work starts."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ExportError

FORMATS = ("pt2", "onnx", "torchscript")
#: file endings that name a format; a contradicting --format is refused
SUFFIXES = {".pt2": "pt2", ".onnx": "onnx"}
TORCHSCRIPT_METHODS = ("auto", "script", "trace")
#: the optional extra that brings ONNX export and its runtime
DEPLOY_EXTRA = "deploy"
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
#: relative tolerance by the model's floating dtype (see verify.relative_difference)
TOLERANCES = {torch.float64: 1e-4, torch.float32: 1e-4, torch.float16: 1e-2,
              torch.bfloat16: 2e-2}
#: the opsets the dynamo-based ONNX exporter writes (older ones need the legacy exporter)
MIN_OPSET = 18
#: batch sizes a dynamic-batch export is verified at: the edge case and one that is
#: neither it nor the size the export traced with
DYNAMIC_CHECK_BATCHES = (1, 3)
DYNAMIC_EXAMPLE_BATCH = 2
MAX_BATCH = 65536
#: the most input elements one batch may hold (1 GiB of float32): a typo in a shape must
#: not allocate without bound
MAX_INPUT_ELEMENTS = 2**28


@dataclass(frozen=True)
class ExportOptions:
    """The settings of one export.

    Parameters
    ----------
    format : "pt2" (torch.export ExportedProgram), "onnx" or "torchscript"
    input_shape : one sample's shape (without the batch); None proposes it from the model
    batch_size : the batch of a static export (and of its verification)
    dynamic_batch : make dimension 0 dynamic; verified at DYNAMIC_CHECK_BATCHES
    opset : ONNX opset (None: the exporter's default)
    device : where to export and verify ("cpu", "cuda", ...); None: the model's device
    tolerance : largest accepted relative difference; None: by dtype (TOLERANCES)
    torchscript_method : "auto" (script, else trace), "script" or "trace"
    """

    format: str
    input_shape: tuple[int, ...] | None = None
    batch_size: int = 1
    dynamic_batch: bool = False
    opset: int | None = None
    device: str | None = None
    tolerance: float | None = None
    torchscript_method: str = "auto"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExportOptions:
        """Build and validate options from JSON-ready values; ExportError names the field."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ExportError(f"export.{unknown[0]}: unknown option (known: "
                              f"{', '.join(sorted(known))})")
        shape = values.get("input_shape")
        if shape is not None:
            if not isinstance(shape, list | tuple) or not shape or not all(
                    isinstance(size, int) and not isinstance(size, bool) and size > 0
                    for size in shape):
                raise ExportError("export.input_shape: expected a list of positive sizes "
                                  "such as [3, 224, 224] (one sample, no batch)")
            values = {**values, "input_shape": tuple(shape)}
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        """Raise ExportError naming the first bad field."""
        if self.format not in FORMATS:
            raise ExportError(f"export.format: '{self.format}' is not one of "
                              f"{', '.join(FORMATS)}")
        if not _positive_int(self.batch_size) or self.batch_size > MAX_BATCH:
            raise ExportError(f"export.batch_size: expected a positive integer of at most "
                              f"{MAX_BATCH:,}")
        if self.input_shape is not None:
            elements = math.prod(self.input_shape) * max(self.export_batch(),
                                                         *self.check_batches())
            if elements > MAX_INPUT_ELEMENTS:
                raise ExportError(f"export.input_shape: a batch of {elements:,} input elements "
                                  f"is too large (at most {MAX_INPUT_ELEMENTS:,})")
        if self.opset is not None:
            if self.format != "onnx":
                raise ExportError("export.opset: only ONNX has an opset")
            if not _positive_int(self.opset) or self.opset < MIN_OPSET:
                raise ExportError(f"export.opset: expected an integer of at least {MIN_OPSET} "
                                  "(torch.onnx.export(dynamo=True) writes opset 18 and newer)")
        if self.tolerance is not None and not (isinstance(self.tolerance, int | float)
                                               and not isinstance(self.tolerance, bool)
                                               and 0 <= self.tolerance < float("inf")):
            raise ExportError("export.tolerance: expected a number >= 0")
        if self.torchscript_method not in TORCHSCRIPT_METHODS:
            raise ExportError(f"export.torchscript_method: '{self.torchscript_method}' is not "
                              f"one of {', '.join(TORCHSCRIPT_METHODS)}")
        if self.torchscript_method != "auto" and self.format != "torchscript":
            raise ExportError("export.torchscript_method: only for the torchscript format")

    def export_batch(self) -> int:
        """The batch size the exporter traces with."""
        return max(self.batch_size, DYNAMIC_EXAMPLE_BATCH) if self.dynamic_batch \
            else self.batch_size

    def check_batches(self) -> tuple[int, ...]:
        """The batch sizes the artifact is verified at."""
        return DYNAMIC_CHECK_BATCHES if self.dynamic_batch else (self.batch_size,)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_output_path(path: str | Path, fmt: str) -> Path:
    """The output path, checked: its folder exists, it is not a folder, its ending agrees.

    Raises
    ------
    ExportError : names the path and the problem
    """
    path = Path(path).expanduser()
    if not path.name:
        raise ExportError("export.output: give a file name")
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; give a file name such as "
                          f"{path / ('model' + suffix_for(fmt))}")
    if not path.parent.is_dir():
        raise ExportError(f"{path}: folder {path.parent} does not exist")
    named = SUFFIXES.get(path.suffix.lower())
    if named is not None and named != fmt:
        raise ExportError(f"{path}: the name says {named} but the format is {fmt}; "
                          f"name it {path.with_suffix(suffix_for(fmt)).name} or use "
                          f"--format {named}")
    return path


def suffix_for(fmt: str) -> str:
    """The usual file ending of a format."""
    return {"pt2": ".pt2", "onnx": ".onnx", "torchscript": ".pt"}[fmt]


def format_of_name(path: str | Path) -> str | None:
    """The format a file name says (".pt2", ".onnx"), or None."""
    return SUFFIXES.get(Path(path).suffix.lower())


def missing_onnx_packages() -> list[str]:
    """The packages ONNX export needs that are not installed."""
    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def check_opset(opset: int | None) -> None:
    """Refuse an opset newer than the installed onnx knows (the exporter would quietly
    write an older one)."""
    if opset is None:
        return
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ExportError(f"export.opset: {opset} is newer than onnx {onnx.__version__} "
                          f"knows (at most {newest})")


def require_onnx() -> None:
    """Raise ExportError naming the extra when ONNX export's packages are missing."""
    missing = missing_onnx_packages()
    if missing:
        raise ExportError(f"onnx export needs {', '.join(missing)} (not installed): "
                          f"pip install 'weightsmith[{DEPLOY_EXTRA}]' (or pip install "
                          f"{' '.join(ONNX_PACKAGES)})")
