"""Training data for a test training: synthetic, the demo digits, an image folder, a tensor file.

Every source is checked before training starts: a file that cannot be read, missing
keys, an empty folder or samples that do not fit the model give one error naming
the source and the problem (FileError for files and folders, EditError otherwise).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..allocation import check_bytes, module_nbytes, shape_words
from ..errors import EditError, FileError
from .config import TrainConfig
from .model_io import (
    example_inputs,
    first_layer,
    first_line,
    model_placement,
    propose_input,
    resolve_input,
)

#: key pairs a tensor file may use for its samples and their targets
TENSOR_KEYS = (("inputs", "targets"), ("x", "y"))
DATA_SUFFIXES = (".pt", ".pth", ".safetensors", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


class DataSource:
    """Samples with targets, and how to draw shuffled batches of them."""

    #: a short description for messages and the report, e.g. "demo digits (1,438 samples)"
    description: str = ""
    #: number of samples
    size: int = 0
    #: True when the targets are class labels (integers)
    integer_targets: bool = True

    #: settings the source resolved (a proposed input shape), recorded so a replay matches
    resolved: dict[str, object]

    def head(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `count` samples and targets, on the CPU, for checks."""
        raise NotImplementedError

    def label_range(self) -> tuple[int, int] | None:
        """The smallest and largest class label of all the data (None: not labels)."""
        return None

    def batches(self, batch_size: int, device: torch.device, dtype: torch.dtype,
                seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless shuffled batches (a new order every pass), on `device`.

        Floating inputs and regression targets are cast to `dtype` (the model's).
        Batches are full: the last partial batch of a pass is dropped, so that every
        step sees the same batch size.
        """
        raise NotImplementedError


class TensorData(DataSource):
    """Samples held in memory; moved to the training device once, then indexed."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, description: str) -> None:
        self.inputs = inputs
        self.targets = targets
        self.size = int(inputs.shape[0])
        self.integer_targets = not (targets.is_floating_point() or targets.is_complex())
        self.description = f"{description} ({self.size:,} samples)"
        self.resolved = {}

    def head(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[:count], self.targets[:count]

    def label_range(self) -> tuple[int, int] | None:
        if not self.integer_targets or self.targets.dtype == torch.bool:
            return None
        return int(self.targets.min()), int(self.targets.max())

    def batches(self, batch_size: int, device: torch.device, dtype: torch.dtype,
                seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        inputs = _cast(self.inputs, device, dtype)
        targets = _cast(self.targets, device, dtype)
        return _shuffled(inputs, targets, min(batch_size, self.size), seed)


def _shuffled(inputs: torch.Tensor, targets: torch.Tensor, batch_size: int,
              seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    count = inputs.shape[0]
    while True:
        # The order is drawn on the CPU so that it is the same on every device.
        order = torch.randperm(count, generator=generator).to(inputs.device)
        for start in range(0, count - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            yield inputs[index], targets[index]


def _cast(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if tensor.is_floating_point():
        return tensor.to(device=device, dtype=dtype)
    if tensor.dtype != torch.long and not tensor.is_complex() and tensor.dtype != torch.bool:
        tensor = tensor.long()  # class labels and token ids as the loss and embeddings want
    return tensor.to(device=device)


class ImageFolderData(DataSource):
    """A torchvision `ImageFolder` (root/CLASS/IMAGE), resized, read batch by batch."""

    def __init__(self, root: Path, side: int, channels: int) -> None:
        from torchvision import datasets, transforms

        steps: list[object] = [transforms.Resize((side, side))]
        if channels == 1:
            steps.append(transforms.Grayscale(num_output_channels=1))
        elif channels != 3:
            raise EditError(f"data: {root}: images have 1 or 3 channels; the model's first "
                            f"layer takes {channels}")
        steps.append(transforms.ToTensor())
        try:
            self.dataset = datasets.ImageFolder(str(root), transform=transforms.Compose(steps))
        except (FileNotFoundError, RuntimeError) as error:
            raise FileError(root, "holds no images in class folders (expected "
                            f"{root.name}/CLASS/IMAGE.png; {first_line(error)})") from None
        self.size = len(self.dataset)
        self.integer_targets = True
        classes = len(self.dataset.classes)
        self.description = (f"image folder {root} ({self.size:,} images, {classes} classes, "
                            f"resized to {side}x{side})")
        self.root = root
        self.resolved = {"image_size": side}

    def label_range(self) -> tuple[int, int] | None:
        return 0, len(self.dataset.classes) - 1

    def _sample(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            return self.dataset[index]
        except Exception as error:  # a damaged or unreadable image
            path = self.dataset.samples[index][0]
            raise FileError(path, f"cannot be read as an image ({first_line(error)})") from None

    def head(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = [self._sample(index) for index in range(min(count, self.size))]
        return (torch.stack([image for image, _ in samples]),
                torch.tensor([label for _, label in samples]))

    def batches(self, batch_size: int, device: torch.device, dtype: torch.dtype,
                seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(seed)
        batch_size = min(batch_size, self.size)
        while True:
            order = torch.randperm(self.size, generator=generator).tolist()
            for start in range(0, self.size - batch_size + 1, batch_size):
                samples = [self._sample(index) for index in order[start:start + batch_size]]
                images = torch.stack([image for image, _ in samples])
                labels = torch.tensor([label for _, label in samples])
                yield images.to(device=device, dtype=dtype), labels.to(device)


def open_data(config: TrainConfig, model: nn.Module, seed: int,
              allocation_limit: int | None = None) -> DataSource:
    """The data source `config.data` names, checked against `model` where it can be.

    What the settings make the data allocate (synthetic samples, resized images) is held
    to what an edit of the model may allocate (`engine.allocation`; `allocation_limit`
    is the caller's, None: the default rule), before anything is made.

    Raises
    ------
    FileError : a file or folder is missing, unreadable, empty or lacks keys
    EditError : the samples cannot fit the model, or the settings contradict the data
    """
    name = config.data
    if name == "synthetic":
        return synthetic_data(config, model, seed, allocation_limit)
    if name == "demo":
        return demo_data()
    path = Path(name).expanduser()
    if not path.exists():
        raise FileError(path, "no such file or folder (data is 'synthetic', 'demo', an image "
                        "folder or a .pt/.safetensors/.npz file)")
    if path.is_dir():
        return image_folder_data(path, config, model, allocation_limit)
    return tensor_file_data(path)


def demo_data() -> TensorData:
    """The training split of the demo digits (the split the demo weights were trained on)."""
    from ..demo import demo_data as load_digits
    from ..demo import demo_split

    inputs, labels = load_digits()
    train_index, _ = demo_split(len(inputs))
    return TensorData(inputs[train_index], labels[train_index], "demo digits")


def synthetic_data(config: TrainConfig, model: nn.Module, seed: int,
                   allocation_limit: int | None = None) -> TensorData:
    """Random inputs of a shape the model takes, with random targets it can learn.

    The shape is `config.input_shape` or proposed from the model's first layer. Class
    targets are drawn in [0, num_classes), num_classes being the model's output size
    unless given, and each sample is its class's random pattern plus noise; regression
    targets are a fixed random linear function of the inputs, shaped like the output.
    Token inputs are random ids with random targets (learnt by heart).
    """
    _, dtype = model_placement(model)
    model_bytes = module_nbytes(model)
    if config.input_shape is not None:  # probing the model runs one sample of it
        _check_samples(config.input_shape, config.samples, dtype, model_bytes,
                       allocation_limit, "train.input_shape")
    guess, output = resolve_input(model, dtype, config.input_shape)
    _check_samples(list(guess.shape), config.samples, dtype, model_bytes, allocation_limit,
                   "train.samples")
    generator = torch.Generator().manual_seed(seed)
    inputs = example_inputs(guess, config.samples, dtype, generator)
    task = config.task or "classification"
    if task == "classification":
        if output.dim() < 2:
            raise EditError(f"data: synthetic: the model's output has shape "
                            f"{list(output.shape)}; classification needs (batch, classes)")
        outputs = int(output.shape[-1])
        classes = config.num_classes or outputs
        if classes > outputs:
            raise EditError(f"train.num_classes: {classes} is more than the model's "
                            f"{outputs} outputs")
        targets = torch.randint(0, classes, (config.samples, *output.shape[1:-1]),
                                generator=generator)
        if guess.tokens is None and targets.dim() == 1:
            # Each class gets a random pattern and its samples are that pattern plus
            # noise: learnable by any working model, so "the loss goes down" means
            # something even on made-up data.
            patterns = torch.randn((classes, *guess.shape), generator=generator).to(dtype)
            inputs = patterns[targets] + inputs
    else:
        targets = torch.randn((config.samples, *output.shape[1:]), generator=generator)
        if guess.tokens is None:
            # Targets a fixed random linear function of the inputs, for the same reason.
            flat = inputs.reshape(config.samples, -1).float()
            teacher = torch.randn((flat.shape[1], targets[0].numel()), generator=generator)
            targets = (flat @ teacher / flat.shape[1] ** 0.5).reshape(targets.shape)
    shape = "x".join(str(size) for size in guess.shape)
    kind = f"token ids < {guess.tokens}" if guess.tokens is not None else "inputs"
    data = TensorData(inputs, targets, f"synthetic {shape} {kind}")
    data.resolved = {"input_shape": list(guess.shape)}
    if task == "classification":
        data.resolved["num_classes"] = classes
    return data


def _check_samples(shape: list[int], samples: int, dtype: torch.dtype, model_bytes: int,
                   allocation_limit: int | None, field: str) -> None:
    numel = samples
    for size in shape:
        numel *= size
    # inputs, and as much again for the class patterns or regression targets
    check_bytes(2 * numel * max(dtype.itemsize, 4), field,
                f"{samples:,} synthetic samples of {shape_words(shape)}", model_bytes,
                allocation_limit)


def image_folder_data(root: Path, config: TrainConfig, model: nn.Module,
                      allocation_limit: int | None = None) -> ImageFolderData:
    """An image folder resized to `config.image_size`, or to a side the model takes."""
    found = first_layer(model)
    if found is None or not isinstance(found[1], nn.Conv2d):
        raise EditError(f"data: {root}: an image folder needs a model that starts with a "
                        "2-D convolution")
    channels = found[1].in_channels
    side = config.image_size
    if side is None:
        _, dtype = model_placement(model)
        side = propose_input(model, dtype).shape[-1]
    batch = max(1, config.batch_size)
    check_bytes(batch * channels * side * side * 4, "train.image_size",
                f"batches of {batch} images of {channels}x{side}x{side}", module_nbytes(model),
                allocation_limit)
    return ImageFolderData(root, side, channels)


def read_tensor_file(path: Path) -> dict[str, torch.Tensor]:
    """Every array of a .npz, .safetensors or .pt/.pth file, by name, read safely."""
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise FileError(path, "unknown data file type (use an image folder, or a .pt, "
                        ".safetensors or .npz file with inputs and targets)")
    if suffix == ".npz":
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as arrays:
                return {key: torch.from_numpy(np.array(arrays[key])) for key in arrays.files}
        except (ValueError, OSError, TypeError, zipfile.BadZipFile, EOFError) as error:
            raise FileError(path, f"not a readable .npz file ({first_line(error)})") from None
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise FileError(path, f"not a valid safetensors file ({first_line(error)})") from None
    # Read like every checkpoint: weights_only, its pickle checked before it is loaded.
    from ..io.torch_files import load_pickle

    data = load_pickle(path)
    if isinstance(data, tuple | list) and len(data) == 2:
        data = {"inputs": data[0], "targets": data[1]}
    if not isinstance(data, dict):
        raise FileError(path, f"holds a {type(data).__name__}; expected a dict with "
                        "'inputs' and 'targets' tensors")
    return data


def tensor_file_data(path: Path) -> TensorData:
    """Inputs and targets from a tensor file (keys inputs/targets, or x/y)."""
    arrays = read_tensor_file(path)
    for inputs_key, targets_key in TENSOR_KEYS:
        if inputs_key in arrays and targets_key in arrays:
            break
    else:
        found = ", ".join(sorted(map(str, arrays))) or "nothing"
        raise FileError(path, f"needs 'inputs' and 'targets' (or 'x' and 'y'); found {found}")
    inputs, targets = arrays[inputs_key], arrays[targets_key]
    for key, value in ((inputs_key, inputs), (targets_key, targets)):
        if not isinstance(value, torch.Tensor):
            raise FileError(path, f"'{key}' is a {type(value).__name__}, not a tensor")
        if value.dim() == 0 or value.shape[0] == 0:
            raise FileError(path, f"'{key}' holds no samples (shape {list(value.shape)})")
    if inputs.shape[0] != targets.shape[0]:
        raise FileError(path, f"'{inputs_key}' has {inputs.shape[0]} samples but "
                        f"'{targets_key}' has {targets.shape[0]}")
    return TensorData(inputs, targets, f"tensor file {path.name}")
