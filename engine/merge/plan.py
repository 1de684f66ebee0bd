"""Which tensors a merge makes, checked against every input before anything is read.

Tensors are matched by name. A tensor missing from an input, or of another shape, or of
another dtype (when no compute dtype is given) is one clear line naming it and the
input, unless `skip_mismatched` leaves it out and reports it. Tensors that are not
floating-point (step counters, position ids, masks) are not merged: the target keeps
its own, and an output takes the base's (or the first model's).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import torch

from ..errors import EditError
from ..io.dtypes import dtype_name
from .inputs import MergeInput
from .spec import MergeSpec


@dataclass
class MergePlan:
    """What a merge will do, name by name.

    Attributes
    ----------
    names : the tensors merged, in the target's order
    shapes, dtypes : of each merged tensor in the inputs (the dtypes as stored)
    kept : names that are not floating-point, left as they are (or copied from the base)
    skipped : (name, why) of the tensors left out with `skip_mismatched`
    unused : names some input holds that the target does not (the edit's target only)
    """

    names: list[str]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, list[torch.dtype]]
    kept: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


def selected(name: str, include: list[str] | None, exclude: list[str]) -> bool:
    """Whether include/exclude globs keep `name` (no include: every name)."""
    if include is not None and not any(fnmatch.fnmatchcase(name, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude)


def plan_merge(spec: MergeSpec, inputs: dict[str, MergeInput],
               target: list[tuple[str, tuple[int, ...], torch.dtype]] | None = None,
               field_prefix: str = "merge") -> MergePlan:
    """Match the inputs' tensors by name and check them.

    Parameters
    ----------
    inputs : by path, every path of `spec` (see `open_inputs`)
    target : (name, shape, dtype) of the tensors to write, in order (the document's); None
        for an output of its own (the names of the base, or the first model, then any
        other input's, in order)

    Raises
    ------
    EditError : a mismatch (without `skip_mismatched`), or nothing left to merge
    """
    order = spec.paths
    if target is None:
        names = list(dict.fromkeys(name for path in order for name in inputs[path].names()))
        target_meta = None
    else:
        names = [name for name, _, _ in target]
        target_meta = {name: (shape, dtype) for name, shape, dtype in target}
        held = set(names)
        plan_unused = sorted({name for path in order for name in inputs[path].names()
                              if name not in held and selected(name, spec.include, spec.exclude)})
    plan = MergePlan([], {}, {})
    if target is not None:
        plan.unused = plan_unused
    for name in names:
        if not selected(name, spec.include, spec.exclude):
            continue
        problem = _problem(spec, inputs, order, name, target_meta)
        if problem == "kept":
            plan.kept.append(name)
            continue
        if problem is not None:
            if not spec.skip_mismatched:
                raise EditError(f"{field_prefix}: {problem} (set skip_mismatched to leave such "
                                "tensors out)")
            plan.skipped.append((name, problem))
            continue
        plan.names.append(name)
        plan.shapes[name] = inputs[order[0]].meta(name)[0]
        plan.dtypes[name] = [inputs[path].meta(name)[1] for path in order]
    if not plan.names:
        what = "matches no floating-point tensor" if not plan.skipped else \
            f"leaves nothing to merge ({len(plan.skipped)} skipped, e.g. {plan.skipped[0][1]})"
        globs = " with these include/exclude globs" if spec.include or spec.exclude else ""
        raise EditError(f"{field_prefix}: the merge{globs} {what}")
    return plan


def _problem(spec: MergeSpec, inputs: dict[str, MergeInput], order: list[str], name: str,
             target: dict[str, tuple[tuple[int, ...], torch.dtype]] | None) -> str | None:
    """Why `name` cannot be merged, "kept" for a tensor that is not floating-point, or None."""
    if target is not None and not target[name][1].is_floating_point:
        return "kept"
    metas = {}
    for path in order:
        if not inputs[path].has(name):
            if target is None and _not_float(inputs, order, name):
                return "kept"
            return f"'{name}' is missing from {inputs[path].label}"
        metas[path] = inputs[path].meta(name)
    first_path = order[0]
    shape, dtype = metas[first_path]
    if not dtype.is_floating_point:
        return "kept"
    if target is not None and target[name][0] != shape:
        return (f"'{name}' is {_shape(target[name][0])} in the document but "
                f"{_shape(shape)} in {inputs[first_path].label}")
    for path in order[1:]:
        other_shape, other_dtype = metas[path]
        if other_shape != shape:
            return (f"'{name}' is {_shape(shape)} in {inputs[first_path].label} but "
                    f"{_shape(other_shape)} in {inputs[path].label}")
        if not other_dtype.is_floating_point:
            return f"'{name}' is {dtype_name(other_dtype)} in {inputs[path].label}"
        if other_dtype != dtype and spec.dtype is None:
            return (f"'{name}' is {dtype_name(dtype)} in {inputs[first_path].label} but "
                    f"{dtype_name(other_dtype)} in {inputs[path].label} (give a dtype to "
                    "merge in)")
    return None


def _not_float(inputs: dict[str, MergeInput], order: list[str], name: str) -> bool:
    """Whether the first input that holds `name` holds it as a tensor that is not a float."""
    for path in order:
        if inputs[path].has(name):
            return not inputs[path].meta(name)[1].is_floating_point
    return False


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape) if shape else "a scalar"
