"""The merge methods, one tensor at a time, with mergekit's semantics and parameter names.

Each method takes the tensors of one name (already cast to the compute dtype) and gives
the merged tensor. The formulas are mergekit's own (`mergekit.merge_methods`):

- `linear`: sum of weight x tensor, divided by the sum of the weights when `normalize`
  (default true); computed in float32 (float64 for float64 inputs).
- `task_arithmetic`: base + lambda x sum of weight x (tensor - base), the sum divided by
  the sum of the weights when `normalize` (default false).
- `ties`: each task vector (tensor - base) trimmed to its `density` largest magnitudes,
  times its weight; the sign of the sum elected per element; the entries that agree with
  it summed and divided by the sum of their weights (`normalize`, default true); lambda.
- `dare_linear`, `dare_ties`: as task_arithmetic and ties, but each task vector keeps a
  random `density` share of its elements (Bernoulli), rescaled so its L1 norm is
  unchanged (`rescale`, default true).
- `slerp`: spherical interpolation from the base (t = 0) to the other model (t = 1) over
  the whole flattened tensor; linear when the two are (anti)parallel.
- `passthrough`: the single model's tensor (times `scale` when given).

Memory: a method holds the inputs of one name and a few tensors of its size; the task
vector methods accumulate instead of stacking (see `_accumulate`), so a merge of n
models needs about n + 3 tensors of the largest size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

#: the methods, in the order a user meets them
METHOD_NAMES = ("linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "slerp",
                "passthrough")


@dataclass(frozen=True)
class MethodInfo:
    """What a method needs and accepts.

    Attributes
    ----------
    name : mergekit's name
    base : "required", "none" (a base is refused) or "ignored"
    min_models, max_models : how many models (besides the base) it merges
    parameters : the global parameters it takes, with their defaults
    per_model : the per-model parameters it takes, with their defaults (None: required)
    random : whether it draws random numbers (needs a seed)
    """

    name: str
    base: str
    min_models: int
    max_models: int | None
    parameters: dict[str, Any]
    per_model: dict[str, Any] = field(default_factory=dict)
    random: bool = False


def _gta(name: str, normalize: bool, rescale: bool, random: bool, density: bool) -> MethodInfo:
    per_model: dict[str, Any] = {"weight": 1.0}
    if density:
        per_model["density"] = 1.0
    parameters: dict[str, Any] = {"normalize": normalize, "lambda": 1.0, "int8_mask": False}
    if random:
        parameters["rescale"] = rescale
    return MethodInfo(name, "required", 1, None, parameters, per_model, random)


METHODS: dict[str, MethodInfo] = {
    "linear": MethodInfo("linear", "ignored", 1, None, {"normalize": True}, {"weight": 1.0}),
    "task_arithmetic": _gta("task_arithmetic", False, False, False, False),
    "ties": _gta("ties", True, False, False, True),
    "dare_linear": _gta("dare_linear", False, True, True, True),
    "dare_ties": _gta("dare_ties", False, True, True, True),
    "slerp": MethodInfo("slerp", "required", 1, 1, {"t": None}),
    "passthrough": MethodInfo("passthrough", "none", 1, 1, {}, {"scale": None}),
}


@dataclass
class MergeInputs:
    """The tensors of one name, cast to the compute dtype.

    Attributes
    ----------
    models : the models' tensors, in the configured order (the base is not among them)
    weights, densities, scales : per model
    base : the base's tensor (None for methods without one)
    parameters : the global parameters, defaults filled in
    generator_for : a generator for model i's random draws (the random methods)
    """

    models: list[torch.Tensor]
    weights: list[float]
    densities: list[float]
    base: torch.Tensor | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    scales: list[float | None] = field(default_factory=list)
    generator_for: Callable[[int], torch.Generator] | None = None


def merge_tensors(method: str, inputs: MergeInputs) -> torch.Tensor:
    """Merge one name's tensors with `method` (see the module's docstring)."""
    return _KERNELS[method](inputs)


def draw_generator(seed: int, name: str, model_index: int) -> torch.Generator:
    """The generator of one model's random draws for tensor `name` under `seed`.

    It depends only on the seed, the name and the model's position, never on which other
    tensors are merged or in which order, so a recipe replays exactly, in the GUI, the
    API or the command line, and a merge restricted by include/exclude draws the same
    masks for the tensors it keeps.
    """
    digest = hashlib.blake2b(f"{seed}\0{name}\0{model_index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


# ---------------------------------------------------------------------- linear
def _work_dtype(tensor: torch.Tensor) -> torch.dtype:
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def _linear(inputs: MergeInputs) -> torch.Tensor:
    first = inputs.models[0]
    dtype = _work_dtype(first)
    weights = torch.tensor(inputs.weights, dtype=dtype)
    result = torch.zeros(first.shape, dtype=dtype)
    for tensor, weight in zip(inputs.models, weights.unbind(0), strict=True):
        result.addcmul_(tensor, weight)
    if inputs.parameters["normalize"]:
        result.div_(weights.sum())
    return result.to(first.dtype)


# ---------------------------------------------------------------------- task vectors
def _magnitude(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the `density` share of largest magnitudes (at least one element)."""
    if density >= 1:
        return delta
    if density <= 0 or delta.numel() == 0:
        return torch.zeros_like(delta)
    k = max(1, int(density * delta.numel()))
    magnitudes = delta.abs().reshape(-1)
    if magnitudes.dtype != torch.float64:
        magnitudes = magnitudes.float()
    keep = torch.argsort(magnitudes, descending=True)[:k]
    del magnitudes
    mask = torch.zeros(delta.numel(), dtype=delta.dtype)
    mask[keep] = 1
    return delta * mask.reshape(delta.shape)


def _bernoulli(delta: torch.Tensor, density: float, rescale: bool,
               generator: torch.Generator) -> torch.Tensor:
    """Keep each element with probability `density`; rescale to the same L1 norm."""
    if density >= 1:
        return delta
    work = torch.float32 if delta.dtype in (torch.float16, torch.float32) else delta.dtype
    mask = torch.bernoulli(torch.full(delta.shape, density, dtype=work), generator=generator)
    tensor = delta.to(work)
    masked = tensor * mask
    del mask
    if rescale:
        before = tensor.abs().sum()
        after = masked.abs().sum()
        if before >= 1e-7 and after >= 1e-7:
            masked = masked * (before / after)
    return masked.to(delta.dtype)


def _task_vectors(inputs: MergeInputs, sparsify: str | None) -> list[torch.Tensor]:
    """weight x sparsified (tensor - base) for each model, in the base's dtype."""
    base = inputs.base
    assert base is not None
    rescale = inputs.parameters.get("rescale", False)
    deltas = []
    for index, tensor in enumerate(inputs.models):
        delta = tensor - base
        if sparsify == "magnitude":
            delta = _magnitude(delta, inputs.densities[index])
        elif sparsify == "random":
            assert inputs.generator_for is not None
            delta = _bernoulli(delta, inputs.densities[index], rescale,
                               inputs.generator_for(index))
        deltas.append(delta.mul_(torch.tensor(inputs.weights[index], dtype=delta.dtype)))
    return deltas


def _sum_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype torch sums `dtype` in (float32 for half precision), then rounds once."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _accumulate(inputs: MergeInputs, deltas: list[torch.Tensor], consensus: bool) -> torch.Tensor:
    """base + lambda x (the mixed task vector), mergekit's way, one delta at a time.

    mergekit stacks the task vectors and sums over the stack; torch sums half precision
    in float32 and rounds once, so the sums here run in float32 too and are rounded to
    the compute dtype where mergekit's are: the same bits, without the stack.
    """
    base = inputs.base
    assert base is not None
    dtype = deltas[0].dtype
    wide = _sum_dtype(dtype)
    weights = torch.tensor(inputs.weights, dtype=dtype)
    count = len(deltas)
    if consensus:
        # The elected sign: that of the sum of the weighted task vectors (ties at 0: +).
        total = deltas[0].to(wide, copy=True)
        for delta in deltas[1:]:
            total.add_(delta)
        majority = total.to(dtype) >= 0
        del total
        mixed = torch.zeros(deltas[0].shape, dtype=wide)
        divisor = torch.zeros(deltas[0].shape, dtype=wide)
        for index in range(count):
            delta = deltas.pop(0)
            # sign(delta) == the elected sign; a zero never agrees (its sign is 0).
            agrees = torch.where(majority, delta > 0, delta < 0)
            mixed.add_(delta.mul_(agrees))
            divisor.add_(agrees.to(dtype) * weights[index])
            del delta, agrees
        del majority
        mixed = mixed.to(dtype)
        divisor = divisor.to(dtype)
        divisor[divisor == 0] = 1
    else:
        mixed = deltas.pop(0).to(wide)
        while deltas:
            mixed.add_(deltas.pop(0))
        mixed = mixed.to(dtype)
        divisor = weights.to(wide).sum().to(dtype)
        if divisor.abs() < 1e-8:
            divisor = torch.ones((), dtype=dtype)
    if inputs.parameters["normalize"]:
        mixed.div_(divisor)
    scale = inputs.parameters["lambda"]
    if scale != 1:
        mixed.mul_(scale)
    return (base + mixed).to(base.dtype)


def _gta_kernel(sparsify: str | None, consensus: bool) -> Callable[[MergeInputs], torch.Tensor]:
    def kernel(inputs: MergeInputs) -> torch.Tensor:
        if not inputs.models:
            assert inputs.base is not None
            return inputs.base
        return _accumulate(inputs, _task_vectors(inputs, sparsify), consensus)
    return kernel


# ---------------------------------------------------------------------- slerp
def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = 0.9995,
          eps: float = 1e-8) -> torch.Tensor:
    """Spherical interpolation over the whole flattened tensor (mergekit's `slerp`).

    Work in float32 (float64 for float64 inputs); the result has the inputs' dtype.
    Vectors closer to (anti)parallel than `dot_threshold` are interpolated linearly.
    """
    dtype = _work_dtype(v0)
    a = v0.reshape(1, -1)
    b = v1.reshape(1, -1)
    weight = torch.tensor([[t]], dtype=dtype)
    if not a.shape[1]:
        return ((1 - weight) * a + weight * b).reshape(v0.shape).to(v0.dtype)
    x = a.to(dtype)
    y = b.to(dtype)
    norm_a = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    norm_b = torch.linalg.vector_norm(y, dim=1, keepdim=True)
    norm_a = torch.where(norm_a > eps, norm_a, 1)
    norm_b = torch.where(norm_b > eps, norm_b, 1)
    dot = ((x / norm_a) * (y / norm_b)).sum(dim=1, keepdim=True).clamp(-1, 1)
    linear = dot.abs() > dot_threshold
    theta = torch.acos(torch.where(linear, 0, dot))
    sin_theta = torch.sin(theta)
    coef_a = torch.where(linear, 1 - weight, torch.sin((1 - weight) * theta) / sin_theta)
    coef_b = torch.where(linear, weight, torch.sin(weight * theta) / sin_theta)
    result = torch.empty_like(a)
    result.copy_(coef_a * x + coef_b * y)
    return result.reshape(v0.shape)


def _slerp(inputs: MergeInputs) -> torch.Tensor:
    assert inputs.base is not None
    return slerp(float(inputs.parameters["t"]), inputs.base, inputs.models[0])


# ---------------------------------------------------------------------- passthrough
def _passthrough(inputs: MergeInputs) -> torch.Tensor:
    tensor = inputs.models[0]
    scale = inputs.scales[0] if inputs.scales else None
    return tensor if scale is None else tensor * scale


_KERNELS: dict[str, Callable[[MergeInputs], torch.Tensor]] = {
    "linear": _linear,
    "task_arithmetic": _gta_kernel(None, False),
    "ties": _gta_kernel("magnitude", True),
    "dare_linear": _gta_kernel("random", False),
    "dare_ties": _gta_kernel("random", True),
    "slerp": _slerp,
    "passthrough": _passthrough,
}


def compute_dtype(dtypes: Sequence[torch.dtype], requested: torch.dtype | None) -> torch.dtype:
    """The dtype inputs are cast to before a merge: the requested one, else the promoted
    dtype of the inputs (as mergekit does)."""
    if requested is not None:
        return requested
    result = dtypes[0]
    for dtype in dtypes[1:]:
        result = torch.promote_types(result, dtype)
    return result
