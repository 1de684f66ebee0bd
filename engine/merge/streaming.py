"""A merge's output as a document whose tensors are merged when a save writes them.

The command line's merge never holds the model: each output Slot computes its tensor
from the inputs when the save reads it, and keeps nothing, so a save (one shard at a
time) goes tensor by tensor from the inputs to the output: memory holds one name's
inputs and its result. Tensors that are not merged (not floating-point) are the base's
own Slots, copied byte for byte from its file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..checkpoint import CheckpointState, Slot
from ..document.checkpoint import CheckpointDocument
from ..io.sources import ComputedSource
from .compute import Merger, TensorChange
from .inputs import FileInput, MergeInput, open_inputs
from .plan import MergePlan, plan_merge
from .spec import MergeSpec


class ComputedSlot(Slot):
    """A Slot whose tensor is made each time it is read, and never kept."""

    __slots__ = ()

    def __init__(self, compute: Callable[[], torch.Tensor], shape: tuple[int, ...],
                 dtype: torch.dtype, key: str) -> None:
        super().__init__(loader=compute, shape=shape, dtype=dtype, source=ComputedSource(key))

    @property
    def loaded(self) -> bool:
        return False

    @property
    def tensor(self) -> torch.Tensor:
        assert self._loader is not None
        tensor = self._loader()
        if tuple(tensor.shape) != self._shape or tensor.dtype != self._dtype:
            raise ValueError(f"made {tuple(tensor.shape)} {tensor.dtype}, expected "
                             f"{self._shape} {self._dtype}")
        return tensor


@dataclass
class StreamedMerge:
    """The output document of a merge and what it will do.

    Attributes
    ----------
    document : the output's tensors (merged ones made when read)
    plan : what is merged, kept and skipped
    changes : filled as tensors are made, when a report was asked for
    """

    document: CheckpointDocument
    plan: MergePlan
    changes: list[TensorChange] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {"merged": len(self.plan.names), "copied": list(self.copied),
                "skipped": [[name, why] for name, why in self.plan.skipped],
                "tensors": [change.to_dict() for change in self.changes]}


def streamed_merge(spec: MergeSpec, *, report: bool = False) -> StreamedMerge:
    """Open the inputs and plan the merge; the tensors are merged when read.

    Parameters
    ----------
    spec : the merge (its seed set when the method is random)
    report : record every merged tensor's relative change against each input

    Raises
    ------
    EditError : an input cannot be read, or a mismatch (see `plan_merge`)
    """
    inputs = open_inputs(spec.paths, None, "merge")
    plan = plan_merge(spec, inputs, None)
    merger = Merger(spec, inputs, plan)
    order = spec.paths
    entries: dict[str, Slot] = {}
    result = StreamedMerge(CheckpointDocument(CheckpointState()), plan)
    merged = set(plan.names)
    for name in plan_order(inputs, order):
        if name in merged:
            out = spec.out_dtype or merger.compute_dtype(name)
            entries[name] = ComputedSlot(_maker(merger, name, out, result, report),
                                         plan.shapes[name], out, name)
        elif name in plan.kept:
            entries[name] = _kept_slot(inputs, order, name)
            result.copied.append(name)
    result.document = CheckpointDocument(CheckpointState(entries), source=_source(inputs, order))
    return result


def plan_order(inputs: dict[str, MergeInput], order: list[str]) -> list[str]:
    """Output names: the base's (or first model's) order, then names only others hold."""
    return list(dict.fromkeys(name for path in order for name in inputs[path].names()))


def _maker(merger: Merger, name: str, dtype: torch.dtype, result: StreamedMerge,
           report: bool) -> Callable[[], torch.Tensor]:
    def make() -> torch.Tensor:
        tensor, change = merger.merge(name, report=report)
        if change is not None:
            result.changes.append(change)
        return tensor.to(dtype)
    return make


def _kept_slot(inputs: dict[str, MergeInput], order: list[str], name: str) -> Slot:
    """The Slot of the first input that holds `name` (still lazy: its bytes are copied)."""
    for path in order:
        source = inputs[path]
        if source.has(name):
            if isinstance(source, FileInput):
                return source._entries[name]
            return Slot(source.read(name))
    raise KeyError(name)


def _source(inputs: dict[str, MergeInput], order: list[str]) -> dict[str, Any]:
    """The output's `source`: the first input's folder, so a folder output keeps its
    config and tokenizer files (as mergekit copies the base's)."""
    for path in order:
        source = inputs[path]
        if isinstance(source, FileInput) and source.folder is not None:
            return {"folder": str(source.folder), "weights_name": source.path.name,
                    "path": str(source.path)}
    return {}
