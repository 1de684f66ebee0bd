"""Build common torch.nn layers from a JSON spec, inferring sizes from the layer they replace.

`{"type": "Linear", "out_features": 10}` replacing `nn.Linear(512, 1000)` builds
`nn.Linear(512, 10)`; `{"type": "Sequential", "layers": [...]}` chains sizes from one
layer to the next. Unknown types and arguments are rejected with the field named.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from .errors import EditError

#: type name -> (class, the argument that takes the input size, the output size attribute)
LAYERS: dict[str, tuple[type[nn.Module], str | None, str | None]] = {
    "Linear": (nn.Linear, "in_features", "out_features"),
    "Conv1d": (nn.Conv1d, "in_channels", "out_channels"),
    "Conv2d": (nn.Conv2d, "in_channels", "out_channels"),
    "Conv3d": (nn.Conv3d, "in_channels", "out_channels"),
    "BatchNorm1d": (nn.BatchNorm1d, "num_features", "num_features"),
    "BatchNorm2d": (nn.BatchNorm2d, "num_features", "num_features"),
    "BatchNorm3d": (nn.BatchNorm3d, "num_features", "num_features"),
    "LayerNorm": (nn.LayerNorm, "normalized_shape", None),
    "GroupNorm": (nn.GroupNorm, "num_channels", "num_channels"),
    "Embedding": (nn.Embedding, None, "embedding_dim"),
    "Identity": (nn.Identity, None, None),
    "Dropout": (nn.Dropout, None, None),
    "Dropout1d": (nn.Dropout1d, None, None),
    "Dropout2d": (nn.Dropout2d, None, None),
    "ReLU": (nn.ReLU, None, None),
    "GELU": (nn.GELU, None, None),
    "SiLU": (nn.SiLU, None, None),
    "Tanh": (nn.Tanh, None, None),
    "Sigmoid": (nn.Sigmoid, None, None),
    "LeakyReLU": (nn.LeakyReLU, None, None),
    "Softmax": (nn.Softmax, None, None),
    "Flatten": (nn.Flatten, None, None),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, None, None),
}
_SIZE_ATTRIBUTES = ("in_features", "in_channels", "num_features", "embedding_dim")
_OUT_ATTRIBUTES = ("out_features", "out_channels", "num_features", "embedding_dim")


def input_size(module: nn.Module) -> int | None:
    """The feature/channel count a module expects, from its first sized layer."""
    for sub in module.modules():
        for attribute in _SIZE_ATTRIBUTES:
            value = getattr(sub, attribute, None)
            if isinstance(value, int):
                return value
        if isinstance(sub, nn.LayerNorm) and len(sub.normalized_shape) == 1:
            return sub.normalized_shape[0]
    return None


def output_size(module: nn.Module) -> int | None:
    """The feature/channel count a module produces, from its last sized layer."""
    size = None
    for sub in module.modules():
        for attribute in _OUT_ATTRIBUTES:
            value = getattr(sub, attribute, None)
            if isinstance(value, int):
                size = value
                break
    return size


def build_module(
    spec: Any, in_size: int | None, field: str = "module"
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the module described by `spec`, with `in_size` as the default input size.

    Returns
    -------
    The module, and the spec with every inferred size written in (for the recipe and
    the exported script).

    Raises
    ------
    EditError : unknown type, unknown argument, or a size that cannot be inferred
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise EditError(f"{field}: expected an object with a 'type', e.g. "
                        '{"type": "Linear", "out_features": 10}')
    kind = spec["type"]
    args = {key: value for key, value in spec.items() if key != "type"}
    if kind == "Sequential":
        return _build_sequential(args, in_size, field)
    if kind not in LAYERS:
        raise EditError(f"{field}.type: unknown layer '{kind}' (known: Sequential, "
                        f"{', '.join(LAYERS)})")
    cls, size_argument, _ = LAYERS[kind]
    accepted = inspect.signature(cls.__init__).parameters
    for key, value in args.items():
        if key not in accepted or key in ("self", "device", "dtype"):
            names = [name for name in accepted if name not in ("self", "device", "dtype")]
            raise EditError(f"{field}.{key}: {kind} takes {', '.join(names) or 'no arguments'}")
        if isinstance(value, dict):
            raise EditError(f"{field}.{key}: expected a number, text or a list")
    if size_argument is not None and size_argument not in args:
        if in_size is None:
            raise EditError(f"{field}.{size_argument}: cannot be inferred here; give it")
        args[size_argument] = in_size
    missing = [name for name, parameter in accepted.items()
               if parameter.default is inspect.Parameter.empty
               and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
               and name != "self" and name not in args]
    if missing:
        raise EditError(f"{field}.{missing[0]}: required by {kind}")
    try:
        return cls(**args), {"type": kind, **args}
    except (TypeError, ValueError, RuntimeError) as error:
        # torch's own messages can carry a C++ backtrace: the first line says what failed.
        problem = str(error).strip().splitlines()[0] if str(error).strip() else \
            type(error).__name__
        raise EditError(f"{field}: {kind}({_args_text(args)}) failed: {problem}") from None


def _build_sequential(
    args: dict[str, Any], in_size: int | None, field: str
) -> tuple[nn.Module, dict[str, Any]]:
    layers = args.pop("layers", None)
    if args:
        raise EditError(f"{field}.{next(iter(args))}: Sequential takes only 'layers'")
    if not isinstance(layers, list) or not layers:
        raise EditError(f"{field}.layers: expected a non-empty list of layer specs")
    built = []
    resolved = []
    size = in_size
    for position, layer_spec in enumerate(layers):
        layer, layer_resolved = build_module(layer_spec, size, f"{field}.layers[{position}]")
        built.append(layer)
        resolved.append(layer_resolved)
        size = output_size(layer) or size
    return nn.Sequential(*built), {"type": "Sequential", "layers": resolved}


def _args_text(args: dict[str, Any]) -> str:
    text = ", ".join(f"{key}={value!r}" for key, value in args.items())
    return text if len(text) <= 120 else text[:117] + "..."
