"""What a model takes and gives: device choice, input proposal, probing forwards, outputs.

Probing runs the model in eval mode under `torch.no_grad()` (BatchNorm statistics do
not move) and puts every module's mode back afterwards, so a probe leaves the model
as it found it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import EditError

#: square image sides tried for a convolutional model, cheapest plausible first:
#: adaptive-pooling models (most torchvision classifiers) accept 64; ViTs need 224,
#: Inception 299; small custom CNNs often take 8, 28 or 32
IMAGE_SIDES = (64, 32, 224, 299, 8, 16, 28, 96, 128, 256)
#: tokens per sample for a model that starts with an embedding
SEQUENCE_LENGTH = 16
#: how many samples a probe runs, and the seed they are drawn with, unless told
PROBE_COUNT = 2
PROBE_SEED = 0


def resolve_device(name: str, field: str = "train.device") -> torch.device:
    """The device a run uses: "auto" is CUDA, then MPS, then the CPU.

    `field` names the setting in messages.

    Raises
    ------
    EditError : the named device is not available on this machine
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise EditError(f"{field}: CUDA is not available on this machine "
                            "(use auto or cpu)")
        device = torch.device(name)
        if device.index is None:
            return torch.device("cuda", torch.cuda.current_device())
        if device.index >= torch.cuda.device_count():
            raise EditError(f"{field}: there is no {name} "
                            f"({torch.cuda.device_count()} GPU(s) found)")
        return device
    if name == "mps" and not _mps_available():
        raise EditError(f"{field}: MPS is not available on this machine (use auto or cpu)")
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Device choices for a menu: auto, cpu, then cuda / mps where present."""
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices += ["cuda"] if torch.cuda.device_count() == 1 else [
            f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    return devices


def model_placement(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device of the model's tensors and its floating dtype (float32 if none)."""
    device = None
    dtype = None
    for tensor in [*model.parameters(), *model.buffers()]:
        device = device or tensor.device
        if dtype is None and tensor.is_floating_point():
            dtype = tensor.dtype
    return device or torch.device("cpu"), dtype or torch.float32


@contextlib.contextmanager
def kept_modes(model: nn.Module) -> Iterator[None]:
    """Put back every module's train/eval flag when the block ends."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def logits_of(output: Any) -> torch.Tensor:
    """The main tensor of a model's output: itself, `.logits`, or the first element."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, Mapping):
        for key in ("logits", "out", "output"):
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
        # Else its first tensor, as for a tuple (`last_hidden_state` of an encoder).
        for value in output.values():
            if isinstance(value, torch.Tensor):
                return value
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise EditError(f"train: the model returns {type(output).__name__}; expected a tensor "
                    "(or a tuple, dict or output object holding one)")


def probe(model: nn.Module, inputs: torch.Tensor,
          main_output: Callable[[Any], Any] = logits_of) -> Any:
    """Run one forward pass in eval mode without gradients; modes are put back.

    Returns `main_output` of the model's output (by default its logits, which the
    trainer needs; an export takes any output).
    """
    with kept_modes(model), torch.no_grad():
        model.eval()
        return main_output(model(inputs))


@dataclass(frozen=True)
class InputGuess:
    """One sample's shape and kind, proposed from the model's first layer."""

    shape: tuple[int, ...]
    tokens: int | None  # vocabulary size when the model takes token ids, else None
    layer: str  # the layer the guess comes from, for messages


def first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first convolution, linear or embedding layer in registration order."""
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding, nn.EmbeddingBag)
    for path, module in model.named_modules():
        if isinstance(module, kinds):
            return path, module
    return None


def propose_input(model: nn.Module, dtype: torch.dtype) -> InputGuess:
    """Propose one sample's input shape, checked by probing the model.

    Raises
    ------
    EditError : no first layer found, or no tried shape fits (give input_shape)
    """
    return probe_proposed_input(model, dtype)[0]


def probe_proposed_input(model: nn.Module, dtype: torch.dtype,
                         field: str = "train.input_shape",
                         main_output: Callable[[Any], Any] = logits_of, *,
                         count: int = PROBE_COUNT, seed: int = PROBE_SEED,
                         ) -> tuple[InputGuess, Any]:
    """`propose_input`, with the model's output for the samples it was probed with.

    `field` names the setting in messages (the trainer's or the exporter's input_shape);
    `main_output` is what is taken of the output (see `probe`); `count` and `seed` say
    which samples the probe draws (see `check_input`).
    """
    found = first_layer(model)
    if found is None:
        raise EditError(f"{field}: cannot be proposed (the model has no Conv, Linear "
                        "or Embedding layer); give it, e.g. [3, 64, 64]")
    path, layer = found
    if isinstance(layer, nn.Embedding | nn.EmbeddingBag):
        guess = InputGuess((SEQUENCE_LENGTH,), layer.num_embeddings, path)
        return guess, check_input(model, guess, dtype, main_output, count, seed)
    if isinstance(layer, nn.Linear):
        guess = InputGuess((layer.in_features,), None, path)
        return guess, check_input(model, guess, dtype, main_output, count, seed)
    channels = layer.in_channels
    dims = 1 if isinstance(layer, nn.Conv1d) else 3 if isinstance(layer, nn.Conv3d) else 2
    sides = IMAGE_SIDES if dims == 2 else (64, 32, 16, 8, 128, 224)
    last_error = ""
    for side in sides:
        guess = InputGuess((channels, *([side] * dims)), None, path)
        try:
            return guess, check_input(model, guess, dtype, main_output, count, seed)
        except EditError as error:
            last_error = str(error)
    raise EditError(f"{field}: no tried size fits the model (first layer {path} "
                    f"takes {channels} channel(s); last try: {last_error}); give input_shape")


def resolve_input(model: nn.Module, dtype: torch.dtype,
                  input_shape: list[int] | tuple[int, ...] | None = None,
                  field: str = "train.input_shape",
                  main_output: Callable[[Any], Any] = logits_of, *,
                  count: int = PROBE_COUNT, seed: int = PROBE_SEED) -> tuple[InputGuess, Any]:
    """What one sample of the model's input is: `input_shape` when given, else proposed.

    A given shape is checked by probing the model; token ids are drawn below the
    vocabulary size when the first layer is an embedding. Returns the guess and the
    model's output for the `count` samples drawn with `seed` (see `check_input`). The
    trainer's synthetic data and the deployment export both start here.

    Raises
    ------
    EditError : the shape does not fit the model, or none can be proposed; names `field`
    """
    if input_shape is None:
        return probe_proposed_input(model, dtype, field, main_output, count=count, seed=seed)
    found = first_layer(model)
    tokens = None
    if found is not None and isinstance(found[1], nn.Embedding | nn.EmbeddingBag):
        tokens = found[1].num_embeddings
    guess = InputGuess(tuple(input_shape), tokens, found[0] if found else "")
    try:
        return guess, check_input(model, guess, dtype, main_output, count, seed)
    except EditError as error:
        raise EditError(f"{field}: {error}") from None


def example_inputs(guess: InputGuess, count: int, dtype: torch.dtype,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """`count` random samples of the guessed shape (token ids or normal floats)."""
    if guess.tokens is not None:
        return torch.randint(0, guess.tokens, (count, *guess.shape), generator=generator)
    return torch.randn((count, *guess.shape), generator=generator).to(dtype)


def check_input(model: nn.Module, guess: InputGuess, dtype: torch.dtype,
                main_output: Callable[[Any], Any] = logits_of,
                count: int = PROBE_COUNT, seed: int = PROBE_SEED) -> Any:
    """Probe the model with `count` samples of `guess`; return `main_output` of its
    output (see `probe`) or raise EditError.

    The samples are `example_inputs(guess, count, dtype, <generator seeded with seed>)`
    on the model's device: a caller that draws the same gets the same tensor, so the
    probe's output can serve as the model's output for it (the deployment export
    verifies against it instead of running the model once more).
    """
    device, _ = model_placement(model)
    sample = example_inputs(guess, count, dtype,
                            torch.Generator().manual_seed(seed)).to(device)
    try:
        return probe(model, sample, main_output)
    except EditError:
        raise
    except Exception as error:
        raise EditError(f"input shape {list(guess.shape)} does not fit the model: "
                        f"{first_line(error)}") from None


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, with its type when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
