"""Read a PEFT LoRA adapter folder: `adapter_config.json` and its weights, checked.

peft's layout, exactly: `adapter_config.json` (`peft_type` LORA, `r`, `lora_alpha`,
`target_modules`, `fan_in_fan_out`, `use_rslora`, `rank_pattern`, `alpha_pattern`) and
`adapter_model.safetensors` (or `adapter_model.bin`, read with `weights_only`), whose keys
are `base_model.model.<module path>.lora_A.weight` / `.lora_B.weight` (Linear, Conv1D) or
`.lora_embedding_A` / `.lora_embedding_B` (Embedding). The scaling of a module is
lora_alpha / r, or lora_alpha / sqrt(r) with `use_rslora`. What this reader does not
merge the way peft does (DoRA, trained biases, modules_to_save, Conv2d LoRA) is one line
naming it, never a silent partial merge.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import FileError
from ..io import read_state_dict
from ..io.folder_files import resolve_inside
from ..io.json_files import read_json

CONFIG_NAME = "adapter_config.json"
WEIGHT_NAMES = ("adapter_model.safetensors", "adapter_model.bin")
PREFIX = "base_model.model."
#: the largest adapter_config.json read (a real one is about 1 KB)
MAX_CONFIG_BYTES = 1 * 2**20

_KEY = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A\.weight|lora_B\.weight|lora_embedding_A|"
                  r"lora_embedding_B|lora_magnitude_vector(\.weight)?)$")


@dataclass
class LoraModule:
    """One adapted module: its low-rank factors and scaling.

    Attributes
    ----------
    path : the module's dotted path in the base model (the adapter's key without
        `base_model.model.`)
    kind : "linear" (lora_A/lora_B: Linear or Conv1D) or "embedding"
    A, B : the factors as stored (Linear: A is r x in, B is out x r; Embedding: A is
        r x num_embeddings, B is embedding_dim x r)
    scaling : alpha / r (or alpha / sqrt(r))
    """

    path: str
    kind: str
    A: torch.Tensor
    B: torch.Tensor
    scaling: float

    @property
    def rank(self) -> int:
        return int(self.A.shape[0])

    def delta(self, fan_in_fan_out: bool, scale: float = 1.0) -> torch.Tensor:
        """The weight update, as peft's `get_delta_weight` gives it: in the factors' dtype
        (half-precision factors are multiplied in float32 and rounded back, as peft does on
        the CPU)."""
        a, b = self.A, self.B
        half = a.dtype in (torch.float16, torch.bfloat16)
        if half:
            a, b = a.float(), b.float()
        product = b @ a
        if self.kind == "embedding" or fan_in_fan_out:
            product = product.T
        product = product * (self.scaling * scale)
        return product.to(self.A.dtype) if half else product

    @property
    def weight_name(self) -> str:
        return f"{self.path}.weight"


@dataclass
class Adapter:
    """A LoRA adapter read from a folder."""

    folder: Path
    config: dict[str, Any]
    modules: list[LoraModule]

    @property
    def fan_in_fan_out(self) -> bool:
        return bool(self.config.get("fan_in_fan_out", False))


def read_adapter(folder: str | Path) -> Adapter:
    """Read and check a PEFT LoRA adapter folder.

    Raises
    ------
    FileError : missing files, a config that is not LoRA or asks for what is not merged
        here (DoRA, biases, modules_to_save), keys that are not peft's, factors whose
        shapes do not multiply
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileError(folder, "is not an adapter folder (expected a folder with "
                        f"{CONFIG_NAME} and {WEIGHT_NAMES[0]})")
    config_path = folder / CONFIG_NAME
    if not config_path.is_file() and not config_path.is_symlink():
        raise FileError(folder, f"has no {CONFIG_NAME} (not a PEFT adapter folder)")
    # The adapter's files are read where they really are, and only from inside the
    # folder: a link to a file elsewhere is refused (engine.io.folder_files).
    real_config = resolve_inside(config_path, folder, "the config")
    if real_config.stat().st_size > MAX_CONFIG_BYTES:
        raise FileError(config_path, f"is more than {MAX_CONFIG_BYTES:,} bytes")
    config = read_json(real_config)
    if not isinstance(config, dict):
        raise FileError(config_path, "expected a JSON object")
    _check_config(config_path, config)
    weights = next((folder / name for name in WEIGHT_NAMES
                    if (folder / name).is_file() or (folder / name).is_symlink()), None)
    if weights is None:
        raise FileError(folder, f"has no {WEIGHT_NAMES[0]} (or {WEIGHT_NAMES[1]})")
    tensors = read_state_dict(resolve_inside(weights, folder, "weights"))
    return Adapter(folder, config, _modules(weights, config, tensors))


def _number(config: dict[str, Any], key: str, path: Path, default: Any = None) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value <= 0:
        raise FileError(path, f"{key}: expected a positive number, got {value!r}")
    return value


def _check_config(path: Path, config: dict[str, Any]) -> None:
    peft_type = config.get("peft_type", "LORA")
    if str(peft_type).upper() != "LORA":
        raise FileError(path, f"peft_type: '{peft_type}' adapters are not merged here (only LORA)")
    _number(config, "r", path)
    _number(config, "lora_alpha", path, config.get("r"))
    for key in ("fan_in_fan_out", "use_rslora"):
        if not isinstance(config.get(key, False), bool):
            raise FileError(path, f"{key}: expected true or false")
    if config.get("use_dora"):
        raise FileError(path, "use_dora: DoRA adapters are not merged here (only plain LoRA)")
    if config.get("bias", "none") != "none":
        raise FileError(path, f"bias: '{config['bias']}' (trained biases) is not merged here; "
                        "only adapters with bias \"none\"")
    if config.get("modules_to_save"):
        raise FileError(path, "modules_to_save: adapters that carry whole modules are not "
                        "merged here")
    for key in ("rank_pattern", "alpha_pattern"):
        pattern = config.get(key) or {}
        if not isinstance(pattern, dict) or not all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
                and v > 0 for k, v in pattern.items()):
            raise FileError(path, f"{key}: expected an object of module patterns to numbers")


def _pattern_value(pattern: dict[str, Any], module: str, default: float) -> float:
    """peft's per-module override: the first key that matches the end of the module path."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return float(value)
    return default


def _modules(weights: Path, config: dict[str, Any],
             tensors: dict[str, torch.Tensor]) -> list[LoraModule]:
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        name = key[len(PREFIX):] if key.startswith(PREFIX) else key
        match = _KEY.match(name)
        if match is None:
            raise FileError(weights, f"'{key}' is not a LoRA factor (expected "
                            f"{PREFIX}<module>.lora_A.weight, .lora_B.weight, "
                            ".lora_embedding_A or .lora_embedding_B)")
        if match.group("part").startswith("lora_magnitude"):
            raise FileError(weights, f"'{key}' is a DoRA magnitude; DoRA is not merged here")
        parts.setdefault(match.group("module"), {})[match.group("part")] = tensor
    if not parts:
        raise FileError(weights, "holds no LoRA factors")
    base_r = float(config["r"])
    base_alpha = float(config.get("lora_alpha", base_r))
    modules = []
    for path, found in parts.items():
        kind = "embedding" if "lora_embedding_A" in found or "lora_embedding_B" in found \
            else "linear"
        a_key, b_key = (("lora_embedding_A", "lora_embedding_B") if kind == "embedding"
                        else ("lora_A.weight", "lora_B.weight"))
        if a_key not in found or b_key not in found:
            missing = a_key if a_key not in found else b_key
            raise FileError(weights, f"'{PREFIX}{path}.{missing}' is missing (each module "
                            "needs both factors)")
        a, b = found[a_key].detach(), found[b_key].detach()
        if a.dim() != 2 or b.dim() != 2:
            raise FileError(weights, f"'{path}': factors of {a.dim()} and {b.dim()} dims (Conv "
                            "LoRA is not merged here; Linear, Conv1D and Embedding are)")
        if b.shape[1] != a.shape[0]:
            raise FileError(weights, f"'{path}': lora_B is {b.shape[0]}x{b.shape[1]} and lora_A "
                            f"{a.shape[0]}x{a.shape[1]}: they do not multiply")
        if not (a.is_floating_point() and b.is_floating_point()):
            raise FileError(weights, f"'{path}': the factors are not floating-point")
        r = _pattern_value(config.get("rank_pattern") or {}, path, base_r)
        alpha = _pattern_value(config.get("alpha_pattern") or {}, path, base_alpha)
        if int(r) != a.shape[0]:
            raise FileError(weights, f"'{path}': the factors have rank {a.shape[0]}, the "
                            f"config says r = {r:g}")
        scaling = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
        modules.append(LoraModule(path, kind, a, b, scaling))
    return modules
