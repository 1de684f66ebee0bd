"""Merge one tensor name at a time, and say how far the result is from each input.

`Merger.merge(name)` reads that name's tensor from every input, casts them to the
compute dtype, merges them with the spec's method and gives the result (the inputs are
released as soon as it is made). `relative_change` measures the result against an input:
||result - input|| / ||input|| (0 = unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .inputs import MergeInput
from .methods import MergeInputs, compute_dtype, draw_generator, merge_tensors
from .plan import MergePlan
from .spec import MergeSpec


@dataclass
class TensorChange:
    """How one merged tensor relates to the inputs: a relative change per input label."""

    name: str
    shape: tuple[int, ...]
    changes: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape), "relative_change": self.changes}


class Merger:
    """Makes the merged tensors of a plan, one name at a time.

    Parameters
    ----------
    spec : the checked request (its seed is used for the random methods)
    inputs : every input of the spec, by path
    plan : the names to merge (see `plan_merge`)
    seed : the seed of the random methods (the spec's, or one drawn for this run)
    """

    def __init__(self, spec: MergeSpec, inputs: dict[str, MergeInput], plan: MergePlan,
                 seed: int | None = None) -> None:
        self.spec = spec
        self.inputs = inputs
        self.plan = plan
        self.seed = seed if seed is not None else spec.seed
        if spec.random and self.seed is None:
            raise ValueError("a random merge needs a seed")

    def compute_dtype(self, name: str) -> torch.dtype:
        """The dtype `name` is merged in (the spec's, else the inputs' promoted dtype)."""
        return compute_dtype(self.plan.dtypes[name], self.spec.dtype)

    def merge(self, name: str, report: bool = False) -> tuple[torch.Tensor, TensorChange | None]:
        """The merged tensor `name` (in the compute dtype), and its change report if asked."""
        dtype = self.compute_dtype(name)
        spec = self.spec
        base = None
        if spec.base is not None:
            base = self.inputs[spec.base].read(name).to(dtype)
        models = [self.inputs[model.path].read(name).to(dtype) for model in spec.models]
        seed = self.seed
        generator_for = None
        if spec.random:
            assert seed is not None

            def generator_for(index: int) -> torch.Generator:
                return draw_generator(seed, name, index)

        merged = merge_tensors(spec.method, MergeInputs(
            models=models,
            weights=[model.weight for model in spec.models],
            densities=[model.density for model in spec.models],
            base=base,
            parameters=spec.parameters,
            scales=[model.scale for model in spec.models],
            generator_for=generator_for))
        change = None
        if report:
            change = TensorChange(name, tuple(merged.shape))
            labelled = ([(self.inputs[spec.base].label, base)] if base is not None else []) + [
                (self.inputs[model.path].label, tensor)
                for model, tensor in zip(spec.models, models, strict=True)]
            for label, tensor in labelled:
                change.changes[label] = relative_change(merged, tensor)
        return merged, change


def relative_change(result: torch.Tensor, reference: torch.Tensor) -> float | None:
    """||result - reference|| / ||reference|| in float32 (float64 for float64); None when
    the reference is all zeros and the result is not."""
    dtype = torch.float64 if torch.float64 in (result.dtype, reference.dtype) else torch.float32
    difference = float(torch.linalg.vector_norm(result.to(dtype) - reference.to(dtype)))
    size = float(torch.linalg.vector_norm(reference.to(dtype)))
    if size == 0:
        return 0.0 if difference == 0 else None
    value = difference / size
    return value if math.isfinite(value) else None
