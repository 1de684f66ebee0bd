"""Example inputs for a model's forward: what tracing, export and graphs call it with.

The shape comes from the same probe the trainer and the deployment export use
(`engine.training.model_io`: the first Conv/Linear/Embedding layer proposes a shape,
a forward pass checks it), or is given and checked (`resolve_input`). This module
adds what tracing needs: the inputs as the forward's own arguments, in one batch.
A language model gets `input_ids`; a Hugging Face model also `use_cache=False`, so
that its outputs hold tensors only. The tensors are made on the model's own device:
on the meta device for a model built there, so nothing is computed and no weight is
read.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import EditError
from .training.model_io import (
    SEQUENCE_LENGTH,
    InputGuess,
    first_layer,
    model_placement,
    probe_proposed_input,
    resolve_input,
)


@dataclass(frozen=True)
class ExampleInputs:
    """Positional and keyword arguments of one forward call, and how they were chosen.

    Attributes
    ----------
    args, kwargs : what to call `model(*args, **kwargs)` with
    guess : the probed (or given) shape of one sample
    text : the inputs in words, e.g. `input_ids [1, 16] int64`
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    guess: InputGuess | None = None
    text: str = ""


def is_hf_model(model: nn.Module) -> bool:
    """Whether `model` is a Hugging Face transformers model (it has a config with use_cache)."""
    config = getattr(model, "config", None)
    return config is not None and hasattr(config, "use_cache") and \
        type(model).__module__.startswith("transformers.")


def example_inputs(model: nn.Module, *, batch: int = 1,
                   input_shape: tuple[int, ...] | list[int] | None = None,
                   field_name: str = "input_shape", probe: bool = True) -> ExampleInputs:
    """Arguments to call `model` with: `batch` random samples of the probed shape.

    Parameters
    ----------
    model : the model (probing runs one forward pass in eval mode; modes are put back)
    batch : samples in the batch
    input_shape : one sample's shape, instead of probing (a float input)
    field_name : the field named in errors
    probe : check the shape with a forward pass; without, a given shape, or the shape of
        a first layer that admits one only (an Embedding, a Linear), is not run, and the
        caller's own forward pass is the check (a convolutional model is still probed
        when no shape is given: its image side is found by trying)

    Raises
    ------
    EditError : no shape can be proposed (name the field to give instead)
    """
    device, dtype = model_placement(model)
    if input_shape is not None:
        shape = tuple(int(size) for size in input_shape)
        if not shape or any(size <= 0 for size in shape):
            raise EditError(f"{field_name}: expected positive sizes such as [3, 64, 64]")
        if probe:  # checked by a forward pass; token ids for an embedding
            guess, _ = resolve_input(model, dtype, shape, field=field_name)
        else:
            found = first_layer(model)
            tokens = found[1].num_embeddings if found is not None and \
                isinstance(found[1], nn.Embedding | nn.EmbeddingBag) else None
            guess = InputGuess(shape, tokens, found[0] if found else "")
    elif probe:
        try:
            guess, _ = probe_proposed_input(model, dtype)
        except EditError as error:
            text = str(error).removeprefix("train.input_shape: ")
            raise EditError(f"{field_name}: {text}") from None
    else:
        guess = _unprobed_guess(model, dtype, field_name)
    generator = torch.Generator().manual_seed(0)
    if device.type == "meta":  # no values to draw: nothing is allocated
        sample = torch.empty((batch, *guess.shape), device=device,
                             dtype=torch.long if guess.tokens is not None else dtype)
    elif guess.tokens is not None:
        sample = torch.randint(0, guess.tokens, (batch, *guess.shape), generator=generator)
    else:
        sample = torch.randn((batch, *guess.shape), generator=generator).to(dtype)
    sample = sample.to(device)
    name = _first_argument(model) or ("input_ids" if guess.tokens is not None else "x")
    text = f"{name} {list(sample.shape)} {str(sample.dtype).removeprefix('torch.')}"
    if is_hf_model(model):
        # By keyword: a Hugging Face forward's first argument is not always input_ids.
        return ExampleInputs((), {name: sample, "use_cache": False}, guess, text)
    return ExampleInputs((sample,), {}, guess, text)


def _unprobed_guess(model: nn.Module, dtype: torch.dtype, field_name: str) -> InputGuess:
    found = first_layer(model)
    if found is not None:
        path, layer = found
        if isinstance(layer, nn.Embedding | nn.EmbeddingBag):
            return InputGuess((SEQUENCE_LENGTH,), layer.num_embeddings, path)
        if isinstance(layer, nn.Linear):
            return InputGuess((layer.in_features,), None, path)
    try:
        return probe_proposed_input(model, dtype)[0]
    except EditError as error:
        text = str(error).removeprefix("train.input_shape: ")
        raise EditError(f"{field_name}: {text}") from None


def _first_argument(model: nn.Module) -> str | None:
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            return parameter.name
    return None
