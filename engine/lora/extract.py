"""Extract a LoRA adapter from a fine-tune: a truncated SVD of each weight's difference.

For every selected 2-D weight, the difference tuned - base is factored as B @ A of rank
R (`torch.linalg.svd`; `torch.svd_lowrank` for big matrices, seeded), split so that A
and B carry sqrt of the singular values each, and written in peft's layout with
lora_alpha = r (scaling 1). The report gives each weight's relative error
||delta - B @ A|| / ||delta||: 0 for a fine-tune that is base plus an exact rank-R delta.

Module kinds decide the key names and orientation: Linear (lora_A.weight: r x in,
lora_B.weight: out x r), Conv1D (GPT-2: the weight is in x out, fan_in_fan_out) and
Embedding (lora_embedding_A: r x num_embeddings, lora_embedding_B: dim x r). For a
Hugging Face folder they come from the model its config.json builds (on the meta device:
no memory, no weights); for other files every 2-D weight is taken as a Linear.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import FileError
from ..merge.inputs import FileInput
from ..merge.plan import selected
from ..progress import Progress, report
from .adapter import CONFIG_NAME, PREFIX, WEIGHT_NAMES, LoraModule

#: matrices at least this big on their short side use the randomized low-rank SVD
LOWRANK_MIN_SIDE = 1024
#: extra columns the randomized SVD works with beyond the rank, and its power iterations
LOWRANK_OVERSAMPLE = 10
LOWRANK_ITERATIONS = 4


@dataclass
class ExtractedWeight:
    """One weight's factors and how well they reproduce its difference."""

    name: str
    kind: str
    shape: tuple[int, ...]
    relative_error: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape),
                "relative_error": self.relative_error, "svd": self.method}


@dataclass
class Extraction:
    """An extracted adapter, ready to write."""

    rank: int
    modules: list[LoraModule]
    weights: list[ExtractedWeight]
    fan_in_fan_out: bool
    base: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {"rank": self.rank, "weights": [w.to_dict() for w in self.weights],
                "skipped": [[name, why] for name, why in self.skipped], "notes": self.notes}


def module_kinds(input_: FileInput) -> dict[str, str] | None:
    """{weight name: "linear" | "conv1d" | "embedding"} of a Hugging Face folder's model,
    built on the meta device from its config.json; None for other inputs (or without
    transformers)."""
    folder = input_.folder
    if folder is None or not (folder / "config.json").is_file():
        return None
    try:
        import transformers
        from transformers.pytorch_utils import Conv1D
    except ImportError:
        return None
    from ..io.hf_folder import build_hf_model

    try:
        with torch.device("meta"):
            model = build_hf_model(folder, None, 0)
    except Exception:
        return None  # an architecture transformers cannot build: kinds are guessed
    del transformers
    kinds = {}
    for path, module in model.named_modules():
        name = f"{path}.weight" if path else "weight"
        if isinstance(module, Conv1D):
            kinds[name] = "conv1d"
        elif isinstance(module, torch.nn.Embedding):
            kinds[name] = "embedding"
        elif isinstance(module, torch.nn.Linear):
            kinds[name] = "linear"
    return kinds


def factor(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """B (m x r) and A (r x n) with B @ A the best rank-`rank` approximation of `delta`."""
    work = delta.to(torch.float64 if delta.dtype == torch.float64 else torch.float32)
    rank = min(rank, *work.shape)
    if min(work.shape) >= LOWRANK_MIN_SIDE and rank + LOWRANK_OVERSAMPLE < min(work.shape):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # svd_lowrank draws its sketch from the global generator
            u, s, v = torch.svd_lowrank(work, q=rank + LOWRANK_OVERSAMPLE,
                                        niter=LOWRANK_ITERATIONS)
        u, s, vh = u[:, :rank], s[:rank], v[:, :rank].T
        method = "svd_lowrank"
    else:
        u, s, vh = torch.linalg.svd(work, full_matrices=False)
        u, s, vh = u[:, :rank], s[:rank], vh[:rank]
        method = "svd"
    root = s.sqrt()
    return (u * root).contiguous(), (root[:, None] * vh).contiguous(), method


def extract(base_path: str, tuned_path: str, rank: int, include: list[str] | None = None,
            exclude: list[str] | None = None, progress: Progress | None = None) -> Extraction:
    """Factor every selected weight difference of `tuned_path` against `base_path`.

    Selected: 2-D floating-point tensors named `*.weight` of Linear, Conv1D and Embedding
    modules (every 2-D `*.weight` without a model), present in both with one shape,
    that differ, and that include/exclude keep.

    Raises
    ------
    FileError : an input cannot be read, the rank is not positive, or nothing differs
    """
    if rank < 1:
        raise FileError(tuned_path, f"--rank: must be at least 1, got {rank}")
    base, tuned = FileInput(base_path), FileInput(tuned_path)
    kinds = module_kinds(base)
    result = Extraction(rank, [], [], False, base_path)
    if kinds is None:
        result.notes.append("module kinds taken from names (a Hugging Face folder gives "
                            "them): every 2-D weight is a Linear")
    names = [name for name in base.names()
             if name.endswith(".weight") and selected(name, include, exclude or [])]
    candidates = []
    for name in names:
        shape, dtype = base.meta(name)
        if len(shape) != 2 or not dtype.is_floating_point:
            continue
        kind = kinds.get(name) if kinds is not None else "linear"
        if kind is None:
            continue  # a norm's or a conv's weight: not a LoRA target
        if not tuned.has(name):
            result.skipped.append((name, f"missing from {tuned_path}"))
            continue
        if tuned.meta(name)[0] != shape:
            result.skipped.append((name, f"{shape} in the base, {tuned.meta(name)[0]} tuned"))
            continue
        candidates.append((name, kind))
    seen_storage: set[tuple[int, ...]] = set()
    for position, (name, kind) in enumerate(candidates):
        report(progress, position / max(len(candidates), 1), f"Factoring {name}")
        delta = tuned.read(name).float() - base.read(name).float()
        if not torch.any(delta):
            continue
        key = (hash(delta.flatten()[:64].numpy().tobytes()), *delta.shape)
        if kind == "linear" and key in seen_storage:
            result.skipped.append((name, "the same difference as a weight it is tied to"))
            continue
        seen_storage.add(key)
        # The matrix B @ A stands for: Linear out x in; Conv1D and Embedding the transpose.
        target = delta if kind == "linear" else delta.T
        b, a, method = factor(target, rank)
        approx = b @ a
        error = float(torch.linalg.matrix_norm(target - approx) / torch.linalg.matrix_norm(target))
        path = name[: -len(".weight")]
        module_kind = "embedding" if kind == "embedding" else "linear"
        result.modules.append(LoraModule(path, module_kind, a, b, 1.0))
        result.weights.append(ExtractedWeight(name, kind, tuple(delta.shape), error, method))
        result.fan_in_fan_out |= kind == "conv1d"
    report(progress, 1.0, f"Factored {len(result.modules)} weights")
    if not result.modules:
        raise FileError(tuned_path, f"no selected weight differs from {base_path} (nothing to "
                        "extract)")
    return result


def adapter_config(extraction: Extraction) -> dict[str, Any]:
    """peft's adapter_config.json for the extraction (lora_alpha = r: scaling 1)."""
    ranks = {module.path: module.rank for module in extraction.modules}
    config: dict[str, Any] = {
        "peft_type": "LORA", "task_type": None, "base_model_name_or_path": extraction.base,
        "r": extraction.rank, "lora_alpha": extraction.rank, "lora_dropout": 0.0,
        "target_modules": sorted(ranks), "fan_in_fan_out": extraction.fan_in_fan_out,
        "use_rslora": False, "bias": "none", "modules_to_save": None,
        "init_lora_weights": True, "inference_mode": True,
    }
    # A weight smaller than the rank gets its full rank: peft reads it from rank_pattern.
    smaller = {path: rank for path, rank in ranks.items() if rank != extraction.rank}
    if smaller:
        config["rank_pattern"] = {_exact(path): rank for path, rank in smaller.items()}
        config["alpha_pattern"] = {_exact(path): rank for path, rank in smaller.items()}
    return config


def _exact(path: str) -> str:
    import re

    return "^" + re.escape(path)


def write_adapter(folder: str | Path, extraction: Extraction) -> Path:
    """Write the adapter folder (config and adapter_model.safetensors), atomically.

    Raises
    ------
    FileError : the folder exists and is not empty, or cannot be written
    """
    from safetensors.torch import save_file

    from ..io.atomic import atomic_new_folder

    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileError(folder, "exists and is not an empty folder (choose a new one)")
    if folder.exists():
        folder.rmdir()
    tensors = {}
    for module in extraction.modules:
        if module.kind == "embedding":
            tensors[f"{PREFIX}{module.path}.lora_embedding_A"] = module.A
            tensors[f"{PREFIX}{module.path}.lora_embedding_B"] = module.B
        else:
            tensors[f"{PREFIX}{module.path}.lora_A.weight"] = module.A
            tensors[f"{PREFIX}{module.path}.lora_B.weight"] = module.B
    try:
        with atomic_new_folder(folder) as temp:
            save_file(tensors, str(temp / WEIGHT_NAMES[0]), metadata={"format": "pt"})
            (temp / CONFIG_NAME).write_text(json.dumps(adapter_config(extraction), indent=2)
                                            + "\n", encoding="utf-8")
    except OSError as error:
        raise FileError(folder, f"could not be written ({error.strerror or error})") from None
    return folder


def error_text(value: float) -> str:
    """A relative error for a table: '3.1e-07'."""
    return "nan" if math.isnan(value) else f"{value:.2g}"
