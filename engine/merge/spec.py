"""What a merge is asked to do, checked field by field before anything is read.

The one form behind the `merge` edit, the mergekit YAML reader and the GUI's dialog:
a method, a base, the models with their weight and density, the global parameters,
include/exclude globs, the compute dtype and what to do with mismatched tensors.
Every problem is one `EditError` naming the field (`merge.models[1].weight: expected
a number, got text`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import EditError
from ..io.dtypes import dtype_name, parse_dtype
from .methods import METHOD_NAMES, METHODS

#: the name of the open document among a merge's inputs
SELF = "self"
#: the dtypes a merge computes in
COMPUTE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: the most models one merge takes (each is read for every tensor)
MAX_MODELS = 64


@dataclass(frozen=True)
class ModelRef:
    """One model of a merge: where it is and its per-model parameters."""

    path: str
    weight: float = 1.0
    density: float = 1.0
    scale: float | None = None

    def to_dict(self, method: str) -> dict[str, Any]:
        """The JSON form, with the parameters the method takes."""
        values: dict[str, Any] = {"path": self.path}
        per_model = METHODS[method].per_model
        if "weight" in per_model:
            values["weight"] = self.weight
        if "density" in per_model:
            values["density"] = self.density
        if "scale" in per_model and self.scale is not None:
            values["scale"] = self.scale
        return values


@dataclass
class MergeSpec:
    """A checked merge request.

    Attributes
    ----------
    method : one of `METHOD_NAMES`
    base : the base model's path, "self" or None
    models : the models besides the base, in order (for linear the base is one of them)
    parameters : the method's global parameters, defaults filled in
    include, exclude : globs over tensor names (None: every name)
    dtype : the compute dtype (None: the promoted dtype of the inputs, as mergekit)
    out_dtype : the dtype written by the command line (None: the compute dtype)
    skip_mismatched : leave out (and report) a tensor missing from an input, or of
        another shape or dtype, instead of refusing the merge
    seed : seeds the random methods (None: drawn when the merge runs)
    """

    method: str
    base: str | None
    models: list[ModelRef]
    parameters: dict[str, Any]
    include: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    dtype: torch.dtype | None = None
    out_dtype: torch.dtype | None = None
    skip_mismatched: bool = False
    seed: int | None = None

    @property
    def random(self) -> bool:
        return METHODS[self.method].random

    @property
    def paths(self) -> list[str]:
        """Every input, the base first when there is one, each once."""
        paths = [self.base] if self.base is not None else []
        return list(dict.fromkeys([*paths, *(model.path for model in self.models)]))

    @property
    def uses_self(self) -> bool:
        return SELF in self.paths


def parse_spec(values: dict[str, Any], prefix: str = "merge") -> MergeSpec:
    """Check the fields of a merge (the edit's form) and fill in the defaults.

    Parameters
    ----------
    values : `method`, `base`, `models`, `parameters`, `include`, `exclude`, `dtype`,
        `skip_mismatched`, `seed` (other keys are the caller's to refuse)
    prefix : names the fields in messages ("merge")

    Raises
    ------
    EditError : the first problem, naming the field
    """
    method = values.get("method")
    if method not in METHODS:
        raise EditError(f"{prefix}.method: expected one of {', '.join(METHOD_NAMES)}"
                        + (f", got '{method}'" if isinstance(method, str) else ""))
    info = METHODS[method]
    base = values.get("base")
    if base is not None and (not isinstance(base, str) or not base):
        raise EditError(f"{prefix}.base: expected a path, \"self\" or null")
    parameters = _parameters(values.get("parameters"), method, prefix)
    models = _models(values.get("models"), method, parameters, prefix)
    if base is not None:
        # A base listed among the models is the base (mergekit configs list it there too).
        models = [model for model in models if model.path != base]
        if method == "linear":
            models.append(ModelRef(base, weight=parameters.get("weight", 1.0)))
            base = None
    parameters = {key: value for key, value in parameters.items()
                  if key in info.parameters}
    _check_counts(method, base, models, prefix)
    if method == "slerp" and parameters.get("t") is None:
        raise EditError(f"{prefix}.parameters.t: required by slerp (0 gives the base, "
                        "1 the other model)")
    include = _names(values.get("include"), f"{prefix}.include")
    exclude = _names(values.get("exclude"), f"{prefix}.exclude") or []
    dtype = _dtype(values.get("dtype"), f"{prefix}.dtype")
    skip = values.get("skip_mismatched", False)
    if not isinstance(skip, bool):
        raise EditError(f"{prefix}.skip_mismatched: expected true or false")
    seed = values.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed < 2**63):
        raise EditError(f"{prefix}.seed: expected an integer in [0, 2**63)")
    return MergeSpec(method, base, models, parameters, include, exclude, dtype,
                     skip_mismatched=skip, seed=seed)


def spec_to_dict(spec: MergeSpec) -> dict[str, Any]:
    """The JSON form of a spec (the edit's fields), as `parse_spec` reads it back."""
    values: dict[str, Any] = {"method": spec.method, "base": spec.base,
                              "models": [model.to_dict(spec.method) for model in spec.models]}
    if spec.parameters:
        values["parameters"] = dict(spec.parameters)
    if spec.include is not None:
        values["include"] = list(spec.include)
    if spec.exclude:
        values["exclude"] = list(spec.exclude)
    if spec.dtype is not None:
        values["dtype"] = dtype_name(spec.dtype)
    if spec.skip_mismatched:
        values["skip_mismatched"] = True
    if spec.seed is not None:
        values["seed"] = spec.seed
    return values


def _number(value: Any, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EditError(f"{where}: expected a number, got {_type_name(value)}")
    if not math.isfinite(value):
        raise EditError(f"{where}: must be finite, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise EditError(f"{where}: must be between {low:g} and {high:g}, got {value:g}")
    return float(value)


def _parameters(value: Any, method: str, prefix: str) -> dict[str, Any]:
    where = f"{prefix}.parameters"
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise EditError(f"{where}: expected an object, got {_type_name(value)}")
    info = METHODS[method]
    allowed = [*info.parameters, *(key for key in info.per_model if key != "scale")]
    result: dict[str, Any] = dict(info.parameters)
    for key, item in value.items():
        if key not in allowed:
            takes = ", ".join(allowed) or "no parameters"
            raise EditError(f"{where}.{key}: not a parameter of {method} (it takes {takes})")
        if key in ("normalize", "int8_mask", "rescale"):
            if not isinstance(item, bool):
                raise EditError(f"{where}.{key}: expected true or false, got {_type_name(item)}")
            result[key] = item
        elif key == "t":
            result[key] = _number(item, f"{where}.t", 0.0, 1.0)
        elif key == "density":
            result[key] = _number(item, f"{where}.density", 0.0, 1.0)
        else:
            result[key] = _number(item, f"{where}.{key}")
    return result


def _models(value: Any, method: str, parameters: dict[str, Any], prefix: str) -> list[ModelRef]:
    where = f"{prefix}.models"
    if not isinstance(value, list) or not value:
        raise EditError(f"{where}: expected a list of models, e.g. "
                        '[{"path": "a.safetensors", "weight": 0.5}]')
    if len(value) > MAX_MODELS:
        raise EditError(f"{where}: at most {MAX_MODELS} models, got {len(value)}")
    per_model = METHODS[method].per_model
    models = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict):
            raise EditError(f"{at}: expected an object with a 'path', got {_type_name(item)}")
        path = item.get("path")
        if not isinstance(path, str) or not path:
            raise EditError(f"{at}.path: expected a path or \"self\"")
        if path in seen:
            raise EditError(f"{at}.path: '{path}' is listed twice")
        seen.add(path)
        for key in item:
            if key != "path" and key not in per_model:
                takes = ", ".join(per_model) or "no per-model parameters"
                raise EditError(f"{at}.{key}: not a parameter of {method} per model "
                                f"(it takes {takes})")
        weight = _number(item.get("weight", parameters.get("weight", 1.0)), f"{at}.weight")
        density = _number(item.get("density", parameters.get("density", 1.0)), f"{at}.density",
                          0.0, 1.0)
        scale = item.get("scale")
        if scale is not None:
            scale = _number(scale, f"{at}.scale")
        models.append(ModelRef(path, weight, density, scale))
    return models


def _check_counts(method: str, base: str | None, models: list[ModelRef], prefix: str) -> None:
    info = METHODS[method]
    if info.base == "required" and base is None:
        raise EditError(f"{prefix}.base: {method} needs a base model (the task vectors are "
                        "each model minus the base)" if method != "slerp" else
                        f"{prefix}.base: slerp needs a base (t = 0) and one other model")
    if info.base == "none" and base is not None:
        raise EditError(f"{prefix}.base: {method} takes one model and no base")
    if len(models) < info.min_models:
        raise EditError(f"{prefix}.models: {method} needs at least {info.min_models} model(s) "
                        "besides the base")
    if info.max_models is not None and len(models) > info.max_models:
        what = "one model besides the base" if info.base == "required" else "one model"
        raise EditError(f"{prefix}.models: {method} takes exactly {what}, got {len(models)}")


def _names(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise EditError(f"{where}: expected a glob or a list of globs over tensor names")
    return list(value)


def _dtype(value: Any, where: str) -> torch.dtype | None:
    if value is None:
        return None
    dtype = parse_dtype(value) if isinstance(value, str) else None
    if dtype not in COMPUTE_DTYPES:
        raise EditError(f"{where}: expected a floating-point dtype (float32, bfloat16, float16, "
                        f"float64), got {value!r}")
    return dtype


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "text",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)
