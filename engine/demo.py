"""The built-in demo: a small CNN trained on the 8x8 digits shipped in resources/demo/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch

DEMO_DIR = Path(__file__).resolve().parent.parent / "resources" / "demo"
MODEL_FILE = DEMO_DIR / "digits_cnn.py"
WEIGHTS_FILE = DEMO_DIR / "digits_cnn.safetensors"
DATA_FILE = DEMO_DIR / "digits.npz"
ARCH_SPEC = f"{MODEL_FILE}:DigitsCNN"


def _module(file: Path, name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def demo_model(trained: bool = True) -> torch.nn.Module:
    """The demo CNN, with its trained weights unless `trained` is False."""
    model = _module(MODEL_FILE, "weightsmith_demo_digits_cnn").DigitsCNN()
    if trained:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(WEIGHTS_FILE)))
    return model


def demo_data() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as (N, 1, 8, 8) float inputs in [0, 1] and int64 labels."""
    data = _module(DEMO_DIR / "digits_data.py", "weightsmith_demo_digits_data")
    return data.load_digits(DATA_FILE)


def demo_split(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed train/test split the demo weights were trained with."""
    data = _module(DEMO_DIR / "digits_data.py", "weightsmith_demo_digits_data")
    return data.split_indices(n, seed=seed)
