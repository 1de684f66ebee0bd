"""The settings of a test training: a JSON-ready dataclass, validated field by field.

The same dict is what the GUI panel and the CLI build, what a kept run records in the
recipe (op "train"), and what a replay runs again. Every problem is one EditError
that names the field: `train.lr: must be > 0, got -1`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import EditError
from ..schema import Field, check_value

TASKS = ("classification", "regression")
OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("fp32", "bf16", "fp16")
#: "auto" picks CUDA, then MPS, then the CPU; "cuda:1" names one GPU
DEVICES = ("auto", "cpu", "cuda", "mps")
#: data sources that are not paths
BUILTIN_DATA = ("synthetic", "demo")
#: steps of one training at most (each keeps its loss: a hostile count must not cost
#: unbounded memory or time)
MAX_STEPS = 1_000_000


#: the settings, declared once: the edit "train", the CLI, the GUI panel and the
#: documentation read them from here
TRAIN_FIELDS = (
    Field("data", "text", "synthetic, demo, or the path of an image folder or a tensor file "
          "(.pt/.pth, .safetensors, .npz with inputs/targets or x/y)", default="synthetic"),
    Field("task", "choice", "classification (cross-entropy, accuracy) or regression (MSE); "
          "taken from the targets when absent", choices=TASKS, nullable=True),
    Field("optimizer", "choice", "sgd (with momentum), adam or adamw", default="adam",
          choices=OPTIMIZERS),
    Field("lr", "number", "base learning rate", default=1e-3, minimum=0.0, above_minimum=True,
          label="Learning rate"),
    Field("lr_multipliers", "object", "module or tensor name (globs allowed) -> factor of lr; "
          'later entries win, e.g. {"fc": 10}', default={}),
    Field("momentum", "number", "SGD momentum", default=0.9, minimum=0.0),
    Field("weight_decay", "number", "L2 (SGD, Adam) or decoupled (AdamW) weight decay",
          default=0.0, minimum=0.0),
    Field("batch_size", "int", "samples per step (at most the size of the data)", default=32,
          minimum=1),
    Field("steps", "int", "optimizer steps (or give epochs)", default=100, minimum=1,
          maximum=MAX_STEPS, nullable=True),
    Field("epochs", "int", "passes over the data (instead of steps)", minimum=1,
          maximum=MAX_STEPS, nullable=True),
    Field("seed", "seed", "seeds data order, synthetic data and dropout; drawn and recorded "
          "when absent", nullable=True),
    Field("device", "text", "auto, cpu, cuda, cuda:N or mps", default="auto"),
    Field("precision", "choice", "fp32, or mixed precision bf16 (CUDA or CPU) / fp16 (CUDA)",
          default="fp32", choices=PRECISIONS),
    Field("input_shape", "list", "one sample's shape for synthetic data (proposed from the "
          "model when absent)", nullable=True),
    Field("num_classes", "int", "classes of synthetic targets (the model's output size when "
          "absent)", minimum=1, nullable=True),
    Field("samples", "int", "size of the synthetic data set (cycled, so the model can fit it)",
          default=256, minimum=1),
    Field("image_size", "int", "side of the square images an image folder is resized to "
          "(proposed when absent)", minimum=1, nullable=True),
)


@dataclass
class TrainConfig:
    """What to train on and how; the fields are documented in `TRAIN_FIELDS`."""

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
        """Check every field against its declaration, then what no one field can say;
        raise EditError naming the field."""

        def bad(name: str, problem: str) -> EditError:
            return EditError(f"{prefix}.{name}: {problem}")

        if isinstance(self.input_shape, tuple):
            self.input_shape = list(self.input_shape)
        for declared in TRAIN_FIELDS:
            setattr(self, declared.name, declared.check(getattr(self, declared.name), prefix))
        if not self.data.strip():
            raise bad("data", "expected 'synthetic', 'demo' or the path of a folder or file")
        self.lr = float(self.lr)
        self.momentum = float(self.momentum)
        self.weight_decay = float(self.weight_decay)
        for pattern, factor in self.lr_multipliers.items():
            if not isinstance(pattern, str) or not pattern:
                raise bad("lr_multipliers", "keys must be module or tensor names")
            self.lr_multipliers[pattern] = float(check_value(
                "number", factor, f"{prefix}.lr_multipliers.{pattern}", minimum=0.0))
        if self.steps is not None and self.epochs is not None:
            raise bad("epochs", "give steps or epochs, not both")
        if self.steps is None and self.epochs is None:
            raise bad("steps", "give steps or epochs")
        if self.input_shape is not None:
            shape = self.input_shape
            if (not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                     for n in shape)):
                raise bad("input_shape", "expected a list of positive sizes, e.g. [3, 64, 64]")
        if not _device_ok(self.device):
            raise bad("device", "expected auto, cpu, cuda, cuda:N or mps")


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
