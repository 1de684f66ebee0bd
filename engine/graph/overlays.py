"""Weightsmith's own data on the graph's boxes: trainable, tied, changed, dtype, size, stats.

Each overlay gives one value per shown box (a node or a closed group), read from the
Session: the tensors a box stands for are a tensor node itself, the tensors an op
reads directly, or every tensor a module owns (each tied tensor once). Views turn
the values into colours; nothing here changes the document.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..listing import dtype_name
from ..stats import layer_overview
from .groups import GroupTree

if TYPE_CHECKING:
    from ..progress import Progress
    from ..session import Session

#: overlay name -> the text a menu shows
OVERLAYS = {
    "none": "No overlay",
    "trainable": "Frozen / trainable",
    "tied": "Tied",
    "changed": "Changed since open",
    "dtype": "Dtype",
    "parameters": "Parameter count",
    "norm": "Weight norm",
    "std": "Weight std",
}
#: overlays whose values read tensor data (computed off the GUI thread)
STATISTICS = ("norm", "std")


class BoxTensors:
    """The tensors each box of a graph stands for, by canonical name.

    Parameters
    ----------
    session : the document (model mode)
    tree : the grouped graph of its model
    """

    def __init__(self, session: Session, tree: GroupTree) -> None:
        self.session = session
        self.tree = tree
        self.by_module: dict[str, list[str]] = {}
        seen: dict[str, set[str]] = {}
        document = session.document
        for entry in document.tensor_entries():
            canonical = document.aliases(entry.name)[0]
            parts = entry.owner_path.split(".") if entry.owner_path else []
            for end in range(len(parts) + 1):
                module = ".".join(parts[:end])
                bucket = seen.setdefault(module, set())
                if canonical not in bucket:
                    bucket.add(canonical)
                    self.by_module.setdefault(module, []).append(canonical)

    def of(self, item: str) -> list[str]:
        """Canonical names of the tensors a box stands for."""
        tree = self.tree
        if item in tree.groups:
            return self.by_module.get(tree.groups[item].module, [])
        node = tree.graph.nodes.get(item)
        if node is None:
            return []
        if node.kind in ("parameter", "buffer"):
            return [node.id]
        return [source for source in node.inputs
                if tree.graph.nodes[source].kind in ("parameter", "buffer")]


def changed_names(session: Session) -> set[str]:
    """Tensor and module names that the applied steps of the history changed."""
    names: set[str] = set()
    for step in session.history.applied_steps():
        for change in step.changes:
            names.update(change.names)
            if change.structure_path is not None:
                names.add(change.structure_path)
    return names


def overlay_values(overlay: str, session: Session, boxes: BoxTensors, items: Iterable[str],
                   statistics: dict[str, float] | None = None) -> dict[str, Any]:
    """One value per box for `overlay` (see OVERLAYS); boxes without one are left out.

    trainable: "trainable", "frozen" or "partial"; tied: True; changed: True; dtype:
    the dtype holding most elements; parameters: the element count; norm, std: the
    mean figure of the layers below (from `statistics`, see `weight_statistics`).
    """
    values: dict[str, Any] = {}
    if overlay == "none":
        return values
    changed = changed_names(session) if overlay == "changed" else set()
    tied = {name for group in session.document.tie_groups() for name in group}
    if overlay == "tied":  # a checkpoint has no module ties: nothing is added then
        tied |= {path for group in session.document.module_tie_groups() for path in group}
    for item in items:
        names = boxes.of(item)
        value = _value(overlay, session, boxes, item, names, changed, tied, statistics or {})
        if value is not None:
            values[item] = value
    return values


def _value(overlay: str, session: Session, boxes: BoxTensors, item: str, names: list[str],
           changed: set[str], tied: set[str], statistics: dict[str, float]) -> Any:
    entries = [session.document.entry(name) for name in names]
    if overlay == "trainable":
        flags = {entry.tensor.requires_grad for entry in entries if entry.kind == "parameter"}
        if not flags:
            return None
        return "partial" if len(flags) == 2 else ("trainable" if True in flags else "frozen")
    if overlay == "tied":
        module = boxes.tree.groups[item].module if item in boxes.tree.groups else None
        return True if module in tied or any(name in tied for name in names) else None
    if overlay == "changed":
        module = boxes.tree.groups[item].module if item in boxes.tree.groups else None
        hit = any(name in changed for name in names)
        if module is not None:
            hit = hit or any(name == module or name.startswith(module + ".") or not module
                             for name in changed)
        return True if hit else None
    if overlay == "dtype":
        counts: dict[str, int] = {}
        for entry in entries:
            key = dtype_name(entry.tensor.dtype)
            counts[key] = counts.get(key, 0) + entry.tensor.numel()
        return max(counts, key=counts.__getitem__) if counts else None
    if overlay == "parameters":
        count = sum(entry.tensor.numel() for entry in entries if entry.kind == "parameter")
        return count or None
    if overlay in STATISTICS:
        figures = [statistics[name] for name in names if name in statistics
                   and not math.isnan(statistics[name])]
        return sum(figures) / len(figures) if figures else None
    raise ValueError(f"overlay: expected one of {', '.join(OVERLAYS)}, got {overlay!r}")


def weight_statistics(session: Session, measure: str,
                      progress: Progress | None = None) -> dict[str, float]:
    """The norm or std of every layer's weight, by tensor name (the layer overview's
    figures, sampled beyond 1M elements; NaN for a tensor without data)."""
    return dict(layer_overview(session, measure, progress=progress))
