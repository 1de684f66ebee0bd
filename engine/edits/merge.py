"""`merge`: merge checkpoints into the open document, with mergekit's methods.

`{"op": "merge", "method": "ties", "base": "base.safetensors", "models": [{"path": "self",
"weight": 0.5, "density": 0.5}, {"path": "b.safetensors", "weight": 0.5, "density": 0.5}],
"parameters": {"lambda": 1.0}, "include": ["model.layers.*"], "exclude": [], "dtype":
"float32", "skip_mismatched": false, "seed": 7}`. "self" is the document as it is before
the merge. Every tensor of the document that the include/exclude globs keep (floating
point, each tied tensor once) gets the merged values of its name; the others stay. See
`engine.merge` for the methods and docs/merge.md for examples.

Undo data: a model keeps its tensor objects and the undo data is their old values (as
much memory as the merged tensors); a checkpoint swaps Slots, so a tensor that was never
read from its file costs nothing to undo. A whole-model merge of a model bigger than the
history's budget is applied and stays in the recipe, but cannot be undone: the history
drops its undo data at once and says so (the GUI asks before such a merge).

The GUI computes the merge off its thread first (`prepare`, with progress and Cancel)
and applies the prepared values; the API and recipes compute while they apply, one
tensor at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import EditError
from ..merge.compute import Merger, TensorChange
from ..merge.inputs import open_inputs
from ..merge.plan import MergePlan, plan_merge
from ..merge.spec import SELF, MergeSpec, parse_spec
from ..progress import Progress, report
from ..schema import Field as F
from .base import Edit, names_text, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document


class _Prepared:
    """Merged values computed ahead for one document (the GUI's background work)."""

    def __init__(self, document: Document, plan: MergePlan, values: dict[str, torch.Tensor],
                 changes: list[TensorChange]) -> None:
        self.document = document
        self.plan = plan
        self.values = values
        self.changes = changes


@register
class Merge(Edit):
    """Merge models into the document's tensors (see the module's docstring)."""

    op = "merge"
    fields = (
        F("method", "text", "linear, task_arithmetic, ties, dare_linear, dare_ties, slerp or "
          "passthrough (mergekit's names)", required=True),
        F("base", "text", "the base model: a path, \"self\" (the open document) or null",
          nullable=True),
        F("models", "list", "the models: objects with path (or \"self\"), weight, density",
          required=True),
        F("parameters", "object", "the method's parameters: normalize, lambda, t, int8_mask, "
          "weight, density", nullable=True),
        F("include", "names", "globs of the tensor names to merge (default every one)"),
        F("exclude", "names", "globs of the tensor names to keep as they are"),
        F("dtype", "text", "the dtype to compute in (default the inputs' promoted dtype)"),
        F("skip_mismatched", "bool", "keep (and report) a tensor missing from an input or "
          "of another shape or dtype, instead of refusing", default=False),
        F("seed", "seed", "seeds dare_linear and dare_ties (drawn and recorded when absent)"),
    )

    def parse(self) -> None:
        self.merge_spec: MergeSpec = parse_spec(self.spec)
        self._prepared: _Prepared | None = None

    def describe(self) -> str:
        labels = [Path(path).name if path != SELF else "self"
                  for path in self.merge_spec.paths]
        return f"Merge ({self.spec['method']}) {names_text(labels)}"

    # ------------------------------------------------------------------ running
    def _run_spec(self) -> MergeSpec:
        spec = self.merge_spec
        if spec.random:
            spec.seed = self.seed()  # drawn once and recorded: a replay draws the same masks
        return spec

    def _plan(self, doc: Document) -> tuple[Merger, MergePlan]:
        spec = self._run_spec()
        inputs = open_inputs(spec.paths, doc, "merge.models")
        target = _target(doc)
        plan = plan_merge(spec, inputs, target)
        return Merger(spec, inputs, plan), plan

    def prepare(self, doc: Document, progress: Progress | None = None) -> None:
        """Compute the merged values ahead, reading `doc` but never changing it.

        Run it where waiting is fine (a worker thread, while the session is busy); the
        apply that follows on the same, unchanged document writes the prepared values.

        Raises
        ------
        EditError : as `perform`; Cancelled : `progress.cancel()` was called
        """
        merger, plan = self._plan(doc)
        values: dict[str, torch.Tensor] = {}
        changes = []
        for position, name in enumerate(plan.names):
            report(progress, position / len(plan.names), f"Merging {name}")
            merged, change = merger.merge(name, report=True)
            values[name] = _as_target(doc, name, merged)
            assert change is not None
            changes.append(change)
        report(progress, 1.0, f"Merged {len(plan.names)} tensors")
        self._prepared = _Prepared(doc, plan, values, changes)

    def prepared_undo_bytes(self, doc: Document) -> int | None:
        """Bytes of undo data applying the prepared values to `doc` would keep (see
        `undo_bytes`), so a caller can ask before a merge that cannot be undone; None
        when nothing was prepared for `doc`."""
        prepared = self._prepared
        if prepared is None or prepared.document is not doc:
            return None
        return undo_bytes(doc, list(prepared.plan.names))

    def perform(self, doc: Document, tx: Transaction) -> Any:
        prepared, self._prepared = self._prepared, None  # a step must not keep the values
        if prepared is not None and prepared.document is doc:
            plan, changes = prepared.plan, prepared.changes
            for name in plan.names:
                doc.replace_tensor(tx, name, prepared.values.pop(name))
        else:
            merger, plan = self._plan(doc)
            changes = []
            for name in plan.names:
                merged, change = merger.merge(name, report=True)
                doc.replace_tensor(tx, name, _as_target(doc, name, merged))
                del merged
                assert change is not None
                changes.append(change)
        self.resolved["names"] = list(plan.names)
        return merge_report(self.merge_spec, plan, changes)


def _target(doc: Document) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """The document's stored tensors, each tied tensor once (under its first name)."""
    seen: set[int] = set()
    target = []
    for row in doc.rows(persistent_only=True):
        if row.key in seen:
            continue
        seen.add(row.key)
        target.append((row.name, row.shape, row.dtype))
    return target


def _as_target(doc: Document, name: str, merged: torch.Tensor) -> torch.Tensor:
    """The merged values in the dtype of the document's tensor."""
    _shape, dtype = doc.tensor_meta(name)
    if merged.shape != torch.Size(_shape):
        raise EditError(f"merge: the merged '{name}' has shape {tuple(merged.shape)}, the "
                        f"document's {_shape}")
    return merged.to(dtype)


def merge_report(spec: MergeSpec, plan: MergePlan, changes: list[TensorChange]) -> dict[str, Any]:
    """The JSON-ready report of a merge: what was merged, kept, skipped, and the relative
    change of every merged tensor against each input."""
    return {
        "method": spec.method,
        "inputs": spec.paths,
        "merged": len(plan.names),
        "kept": list(plan.kept),
        "skipped": [[name, why] for name, why in plan.skipped],
        "unused": list(plan.unused),
        "seed": spec.seed,
        "tensors": [change.to_dict() for change in changes],
    }


def undo_bytes(doc: Document, names: list[str]) -> int:
    """Bytes of undo data a merge of `names` keeps: a model's old values; in a checkpoint,
    only the tensors already read into memory."""
    rows = (doc.row(name) for name in names)
    # A tensor never read is read again from its file on undo (only a checkpoint's are).
    return sum(row.nbytes for row in rows if row.unread_source is None)


__all__ = ["SELF", "Merge", "merge_report", "undo_bytes"]
