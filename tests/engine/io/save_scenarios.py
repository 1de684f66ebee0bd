"""Saves into folders that already hold weights: the cases the atomicity tests try.

Each scenario builds the old files under a folder, then names what to open, the edit,
and where and how to save, so a test can run the save with faults injected and check
that the folder afterwards reads as the old set or the new one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.session import Session


def tensors(count: int = 4, size: int = 8) -> dict[str, torch.Tensor]:
    return {f"t{i}": torch.full((size,), float(i)) for i in range(count)}


@dataclass
class Scenario:
    """What to open, how to edit it, and where to save it."""

    name: str
    build: Callable[[Path], None]
    open_path: str  # relative to the scenario's folder
    target: str
    edit: dict[str, Any] = field(default_factory=lambda: {
        "op": "scale", "targets": ["t0", "t3"], "value": 10.0})
    options: dict[str, Any] = field(default_factory=dict)
    hf: bool = False


def _sharded_folder(root: Path) -> None:
    Session(checkpoint=tensors()).save(root / "model", max_shard_size=64)


def _single_folder(root: Path) -> None:
    Session(checkpoint=tensors()).save(root / "model")


def _index_file(root: Path) -> None:
    (root / "plain").mkdir()
    Session(checkpoint=tensors()).save(root / "plain" / "x.safetensors.index.json",
                                       max_shard_size=64)


def _single_file(root: Path) -> None:
    (root / "plain").mkdir()
    Session(checkpoint=tensors()).save(root / "plain" / "x.safetensors")


def _source_for_new_folder(root: Path) -> None:
    (root / "src").mkdir()
    Session(checkpoint=tensors()).save(root / "src" / "model", max_shard_size=64)
    (root / "src" / "model" / "config.json").write_text('{"model_type": "synthetic"}')


def hf_config() -> Any:
    import transformers

    return transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=20,
                                   n_positions=16, bos_token_id=0, eos_token_id=0)


def _hf_folder(root: Path) -> None:
    import transformers

    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(hf_config())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(root / "model", max_shard_size="2KB")


SCENARIOS = [
    Scenario("sharded-in-place", _sharded_folder, "model", "model"),
    Scenario("reshard-same-names", _sharded_folder, "model", "model",
             options={"max_shard_size": 96}),
    Scenario("reshard-more-shards", _sharded_folder, "model", "model",
             options={"max_shard_size": 32}),
    Scenario("sharded-to-single", _sharded_folder, "model", "model",
             options={"max_shard_size": 10**9}),
    Scenario("single-to-sharded", _single_folder, "model", "model",
             options={"max_shard_size": 64}),
    Scenario("safetensors-to-bin", _sharded_folder, "model", "model",
             options={"weights_format": "pt"}),
    Scenario("index-file", _index_file, "plain/x.safetensors.index.json",
             "plain/x.safetensors.index.json"),
    Scenario("single-file", _single_file, "plain/x.safetensors", "plain/x.safetensors"),
    Scenario("new-folder", _source_for_new_folder, "src/model", "new"),
    Scenario("hf-sharded-in-place", _hf_folder, "model", "model",
             edit={"op": "scale", "value": 2.0,
                   "targets": ["transformer.wte.weight", "transformer.h.0.mlp.c_fc.bias"]},
             hf=True),
]
