"""What the exported model is called with: example inputs and the module that is exported.

Inputs come from the shape probe the trainer uses (`engine.training.model_io`): one
sample's shape proposed from the first layer (images for a convolution, token ids
below the vocabulary size for an embedding) or given by the user, checked by a
forward pass. Every batch is drawn from its own seeded generator, so the example
the exporter traces with and the inputs it is verified with differ, and a rerun
draws the same ones. The probe's forward pass runs on the first verification batch,
so its output is the live model's reference for that batch (one forward, not two).
"""

from __future__ import annotations

import copy
import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..document.rows import dtype_name
from ..errors import EditError, ExportError
from ..training.model_io import InputGuess, example_inputs, resolve_input

#: seed of the batch the exporter traces with; verification batches use others
EXAMPLE_SEED = 0
#: keyword arguments a Hugging Face model is exported with: no key/value cache among
#: the outputs (a deployment that generates adds it back with its own runtime), and a
#: plain tuple (logits first) that every format can return
HF_FIXED_KWARGS = {"use_cache": False, "return_dict": False}


@dataclass(frozen=True)
class ExampleInputs:
    """Random inputs of the shape and kind the model takes, on the export device."""

    guess: InputGuess
    dtype: torch.dtype
    device: torch.device

    def batch(self, size: int, seed: int) -> torch.Tensor:
        """`size` samples drawn from a generator seeded with `seed`."""
        generator = torch.Generator().manual_seed(seed)
        return example_inputs(self.guess, size, self.dtype, generator).to(self.device)

    def describe(self, batch: str | int) -> str:
        """E.g. `float32 [batch, 3, 64, 64]` or `token ids < 100, int64 [1, 16]`."""
        shape = ", ".join(str(size) for size in (batch, *self.guess.shape))
        if self.guess.tokens is not None:
            return f"token ids < {self.guess.tokens}, int64 [{shape}]"
        return f"{dtype_name(self.dtype)} [{shape}]"


def probe_inputs(model: nn.Module, dtype: torch.dtype, device: torch.device,
                 input_shape: tuple[int, ...] | None, batch: int,
                 seed: int) -> tuple[ExampleInputs, Any]:
    """The inputs `model` takes, proposed by the shape probe or checked from `input_shape`,
    and the model's output for `ExampleInputs.batch(batch, seed)` (what the probe ran).

    `model` is on `device` (the probe draws its samples on the model's device).

    Raises
    ------
    ExportError : the shape does not fit, or none can be proposed (names input_shape)
    """
    try:
        guess, output = resolve_input(model, dtype, input_shape, field="export.input_shape",
                                      main_output=_any_output, count=batch, seed=seed)
    except EditError as error:
        raise ExportError(str(error)) from None
    return ExampleInputs(guess, dtype, device), output


def _any_output(output: Any) -> Any:
    """An export takes whatever the model returns (the trainer needs its logits)."""
    return output


def is_hugging_face(model: nn.Module) -> bool:
    """Whether `model` is a transformers PreTrainedModel (judged by its classes' modules,
    so transformers is never imported for a model that is not one)."""
    return any(cls.__name__ == "PreTrainedModel" and cls.__module__.startswith("transformers.")
               for cls in type(model).__mro__)


def deployable(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """The module to export for `model`, and notes on what differs from calling it.

    Most models are exported as they are. A Hugging Face model is exported through a
    shallow copy (the same submodules, parameters and buffers: names and ties are the
    model's own) whose `forward` fixes `HF_FIXED_KWARGS`; the live model is not touched.
    """
    if not is_hugging_face(model):
        return model, []
    fixed = _accepted(type(model).forward, HF_FIXED_KWARGS)
    if not fixed:
        return model, []
    view = copy.copy(model)
    # A bound partial in the copy's instance dict shadows the class's forward for this
    # object only; `nn.Module.__call__` finds it like any other forward.
    object.__setattr__(view, "forward",
                       functools.partial(type(model).forward, view, **fixed))
    settings = " and ".join(f"{name}={value}" for name, value in fixed.items())
    return view, [f"Hugging Face model: exported with {settings} (outputs are a tuple, "
                  "logits first, without a key/value cache)"]


def _accepted(function: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The entries of `kwargs` that `function` takes (all of them when it takes **kwargs)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(kwargs)
    return {name: value for name, value in kwargs.items() if name in parameters}
