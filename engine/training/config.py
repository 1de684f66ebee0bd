"""The settings of a test training: a JSON-ready dataclass, validated field by field.

The same dict is what the GUI panel and the CLI build, what a kept run records in the
recipe (op "train"), and what a replay runs again. Every problem is one EditError
that names the field: `train.lr: must be > 0, got -1`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import EditError

TASKS = ("classification", "regression")
OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("fp32", "bf16", "fp16")
#: "auto" picks CUDA, then MPS, then the CPU; "cuda:1" names one GPU
DEVICES = ("auto", "cpu", "cuda", "mps")
#: data sources that are not paths
BUILTIN_DATA = ("synthetic", "demo")


@dataclass
class TrainConfig:
    """What to train on and how.

    Parameters
    ----------
    data : "synthetic", "demo", or the path of an image folder or a tensor file
        (.pt/.pth, .safetensors, .npz with `inputs`/`targets` or `x`/`y`)
    task : "classification" (cross-entropy, accuracy), "regression" (MSE), or None to
        take it from the targets (integers: classification)
    optimizer : "sgd" (with momentum), "adam" or "adamw"
    lr : base learning rate
    lr_multipliers : module or tensor name (globs allowed) -> factor of `lr`; later
        entries win where two select the same tensor, e.g. {"fc": 10.0}
    momentum : SGD momentum
    weight_decay : L2 (SGD, Adam) or decoupled (AdamW) weight decay
    batch_size : samples per step (at most the size of the data)
    steps : optimizer steps; or `epochs` passes over the data (not both)
    seed : seeds data order, synthetic data and dropout; drawn and recorded when None
    device : "auto", "cpu", "cuda", "cuda:N" or "mps"
    precision : "fp32", or mixed precision "bf16" (CUDA or CPU) / "fp16" (CUDA)
    input_shape : one sample's shape for synthetic data (proposed from the model if None)
    num_classes : classes of synthetic targets (the model's output size if None)
    samples : size of the synthetic data set (cycled, so the model can fit it)
    image_size : side of the square images an image folder is resized to (proposed if None)
    """

    data: str = "synthetic"
    task: str | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 32
    steps: int | None = 100
    epochs: int | None = None
    seed: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    input_shape: list[int] | None = None
    num_classes: int | None = None
    samples: int = 256
    image_size: int | None = None

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of every setting, in declaration order."""
        return [item.name for item in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any], prefix: str = "train") -> TrainConfig:
        """Build and validate a config; unknown keys are refused.

        Raises
        ------
        EditError : naming the first bad field, e.g. `train.steps: must be >= 1, got 0`
        """
        if not isinstance(values, dict):
            raise EditError(f"{prefix}: expected an object of settings")
        known = set(cls.field_names())
        unknown = sorted(set(values) - known)
        if unknown:
            raise EditError(f"{prefix}.{unknown[0]}: unknown setting "
                            f"(known: {', '.join(cls.field_names())})")
        config = cls(**values)
        if "steps" not in values and values.get("epochs") is not None:
            config.steps = None  # epochs given alone: the default step count does not apply
        config.validate(prefix)
        return config

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (every field, defaults included)."""
        values = asdict(self)
        values["lr_multipliers"] = dict(self.lr_multipliers)
        return values

    def validate(self, prefix: str = "train") -> None:
        """Check every field's type and range; raise EditError naming the field."""

        def bad(name: str, problem: str) -> EditError:
            return EditError(f"{prefix}.{name}: {problem}")

        if not isinstance(self.data, str) or not self.data.strip():
            raise bad("data", "expected 'synthetic', 'demo' or the path of a folder or file")
        _choice(self.task, TASKS, bad("task", f"expected one of {', '.join(TASKS)}"),
                optional=True)
        _choice(self.optimizer, OPTIMIZERS,
                bad("optimizer", f"expected one of {', '.join(OPTIMIZERS)}"))
        _choice(self.precision, PRECISIONS,
                bad("precision", f"expected one of {', '.join(PRECISIONS)}"))
        self.lr = _number(self.lr, bad, "lr", minimum=0.0, strict=True)
        self.momentum = _number(self.momentum, bad, "momentum", minimum=0.0)
        self.weight_decay = _number(self.weight_decay, bad, "weight_decay", minimum=0.0)
        if not isinstance(self.lr_multipliers, dict):
            raise bad("lr_multipliers", "expected an object such as {\"fc\": 10}")
        for pattern, factor in self.lr_multipliers.items():
            if not isinstance(pattern, str) or not pattern:
                raise bad("lr_multipliers", "keys must be module or tensor names")
            self.lr_multipliers[pattern] = _number(factor, bad, f"lr_multipliers.{pattern}",
                                                   minimum=0.0)
        _integer(self.batch_size, bad, "batch_size", 1)
        _integer(self.steps, bad, "steps", 1, optional=True)
        _integer(self.epochs, bad, "epochs", 1, optional=True)
        if self.steps is not None and self.epochs is not None:
            raise bad("epochs", "give steps or epochs, not both")
        if self.steps is None and self.epochs is None:
            raise bad("steps", "give steps or epochs")
        _integer(self.seed, bad, "seed", 0, optional=True)
        if self.seed is not None and self.seed >= 2**63:
            raise bad("seed", f"must be < 2**63, got {self.seed}")
        _integer(self.samples, bad, "samples", 1)
        _integer(self.num_classes, bad, "num_classes", 1, optional=True)
        _integer(self.image_size, bad, "image_size", 1, optional=True)
        if self.input_shape is not None:
            shape = self.input_shape
            if isinstance(shape, tuple):
                shape = self.input_shape = list(shape)
            if (not isinstance(shape, list) or not shape
                    or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                               for n in shape)):
                raise bad("input_shape", "expected a list of positive sizes, e.g. [3, 64, 64]")
        if not isinstance(self.device, str) or not _device_ok(self.device):
            raise bad("device", "expected auto, cpu, cuda, cuda:N or mps")


def _choice(value: Any, allowed: tuple[str, ...], error: EditError, optional: bool = False) -> None:
    if value is None and optional:
        return
    if value not in allowed:
        raise error


def _number(value: Any, bad: Any, name: str, minimum: float, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(name, "expected a number")
    if not math.isfinite(value):
        raise bad(name, f"must be finite, got {value}")
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise bad(name, f"must be {relation} {minimum:g}, got {value:g}")
    return float(value)


def _integer(value: Any, bad: Any, name: str, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(name, "expected an integer")
    if value < minimum:
        raise bad(name, f"must be >= {minimum}, got {value}")


def _device_ok(device: str) -> bool:
    if device in DEVICES:
        return True
    kind, _, index = device.partition(":")
    return kind == "cuda" and index.isdigit()


def multipliers_from_text(text: str) -> dict[str, float]:
    """Parse `"fc=10, layer4=2"` into `{"fc": 10.0, "layer4": 2.0}` (empty text: none).

    Raises
    ------
    EditError : an entry is not NAME=NUMBER (the entry is quoted)
    """
    multipliers: dict[str, float] = {}
    for entry in text.replace(";", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, equals, value = entry.rpartition("=")
        name = name.strip()
        try:
            factor = float(value)
        except ValueError:
            factor = None
        if not equals or not name or factor is None:
            raise EditError(f"lr_multipliers: expected NAME=NUMBER such as fc=10; got '{entry}'")
        multipliers[name] = factor
    return multipliers


def step_label(steps: int | None, epochs: int | None = None) -> str:
    """The history label of a kept run: 'Test training: 200 steps'."""
    if steps is None and epochs is not None:
        return f"Test training: {epochs} epoch{'s' if epochs != 1 else ''}"
    return f"Test training: {steps} step{'s' if steps != 1 else ''}"
