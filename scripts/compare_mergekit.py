"""Compare Weightsmith's merges with mergekit's own, tensor by tensor.

Builds small variants locally (a base and three fine-tunes: float32 and bfloat16
tensors of 0 to 3 dims), runs each configuration through mergekit (`mergekit-pytorch`'s
planner and executor, in this process) and through Weightsmith twice: the command line's
streamed merge and the `merge` edit on an opened document. It prints, per
configuration, the largest relative difference over all tensors
(max |ours - mergekit| / max |mergekit|) and how many tensors are bit-identical.

The random methods (dare_*) draw from different generators in the two tools; for them
the figure is how far the size of the merged task vector differs (||merged - base||,
ours against mergekit's), which is small when both draw the same distribution.

Usage: python scripts/compare_mergekit.py [--json] [WORK_FOLDER]
Needs mergekit (`pip install mergekit`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # mergekit's progress bars
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

SHAPES = {"embed.weight": (256, 32), "layers.0.attn.weight": (32, 32),
          "layers.0.attn.bias": (32,), "layers.0.conv.weight": (16, 4, 3),
          "layers.1.mlp.weight": (96, 32), "norm.weight": (32,)}


def make_variants(folder: Path, dtype: torch.dtype, tag: str) -> dict[str, str]:
    """A base and three fine-tunes (base + a random task vector each)."""
    generator = torch.Generator().manual_seed(1234 if dtype == torch.float32 else 4321)
    base = {name: torch.randn(shape, generator=generator) for name, shape in SHAPES.items()}
    paths = {}
    for index, label in enumerate(["base", "a", "b", "c"]):
        scale = 0.0 if index == 0 else 0.05 * index
        tensors = {name: (value + scale * torch.randn(value.shape, generator=generator))
                   .to(dtype).contiguous() for name, value in base.items()}
        path = folder / f"{tag}-{label}.safetensors"
        save_file(tensors, str(path))
        paths[label] = str(path)
    return paths


def configurations(paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    """mergekit configurations over the variants, one or two per method."""
    base, a, b, c = paths["base"], paths["a"], paths["b"], paths["c"]
    return {
        "linear": {"merge_method": "linear", "models": [
            {"model": a, "parameters": {"weight": 0.5}},
            {"model": b, "parameters": {"weight": 0.3}},
            {"model": c, "parameters": {"weight": 0.2}}]},
        "linear (normalize false)": {"merge_method": "linear", "parameters": {"normalize": False},
                                     "models": [{"model": a, "parameters": {"weight": 0.7}},
                                                {"model": b, "parameters": {"weight": 0.6}}]},
        "task_arithmetic": {"merge_method": "task_arithmetic", "base_model": base,
                            "parameters": {"lambda": 0.8}, "models": [
                                {"model": a, "parameters": {"weight": 1.0}},
                                {"model": b, "parameters": {"weight": 0.5}}]},
        "task_arithmetic (normalize)": {"merge_method": "task_arithmetic", "base_model": base,
                                        "parameters": {"normalize": True}, "models": [
                                            {"model": a, "parameters": {"weight": 0.6}},
                                            {"model": c, "parameters": {"weight": 0.4}}]},
        "ties": {"merge_method": "ties", "base_model": base, "models": [
            {"model": base},
            {"model": a, "parameters": {"weight": 0.5, "density": 0.5}},
            {"model": b, "parameters": {"weight": 0.3, "density": 0.7}},
            {"model": c, "parameters": {"weight": 0.2, "density": 0.3}}]},
        "ties (lambda, no normalize)": {"merge_method": "ties", "base_model": base,
                                        "parameters": {"normalize": False, "lambda": 1.3,
                                                       "int8_mask": True}, "models": [
                                            {"model": a, "parameters": {"weight": 0.9,
                                                                        "density": 0.4}},
                                            {"model": b, "parameters": {"weight": 0.4,
                                                                        "density": 0.9}}]},
        "slerp t=0.3": {"merge_method": "slerp", "base_model": base, "parameters": {"t": 0.3},
                        "models": [{"model": base}, {"model": a}]},
        "slerp t=0.75": {"merge_method": "slerp", "base_model": a, "parameters": {"t": 0.75},
                         "models": [{"model": a}, {"model": c}]},
        "passthrough": {"merge_method": "passthrough", "models": [{"model": b}]},
        "dare_linear": {"merge_method": "dare_linear", "base_model": base, "models": [
            {"model": a, "parameters": {"weight": 0.5, "density": 0.5}},
            {"model": b, "parameters": {"weight": 0.5, "density": 0.5}}]},
        "dare_ties": {"merge_method": "dare_ties", "base_model": base, "models": [
            {"model": a, "parameters": {"weight": 0.6, "density": 0.6}},
            {"model": c, "parameters": {"weight": 0.4, "density": 0.4}}]},
    }


def run_mergekit(config: dict[str, Any], out: Path) -> dict[str, torch.Tensor]:
    """mergekit-pytorch's planner and executor, in this process."""
    from mergekit.graph import Executor
    from mergekit.options import MergeOptions
    from mergekit.scripts.merge_raw_pytorch import RawPyTorchMergeConfig, plan_flat_merge

    parsed = RawPyTorchMergeConfig.model_validate(config)
    tasks = plan_flat_merge(parsed, str(out), False, False, MergeOptions(quiet=True))
    Executor(tasks, math_device="cpu", storage_device="cpu").execute()
    return load_file(str(out / "model.safetensors"))


def run_ours_streamed(config: dict[str, Any], out: Path) -> dict[str, torch.Tensor]:
    """The command line's path: the YAML subset read, merged while saved."""
    from engine.merge.streaming import streamed_merge
    from engine.merge.yaml_config import config_from_data
    from engine.session import Session

    spec = config_from_data(config).spec
    if spec.random:
        spec.seed = 7
    merged = streamed_merge(spec)
    Session(document=merged.document).save(out, parallel_shards=1)
    return load_file(str(out))


def run_ours_edit(config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The merge edit on a document opened from the base (or the first model)."""
    from engine import Session
    from engine.merge.yaml_config import config_from_data

    spec = config_from_data(config).spec
    opened = spec.base or spec.models[0].path
    session = Session.open(opened)
    models = [model.to_dict(spec.method) for model in spec.models]
    edit = {"op": "merge", "method": spec.method, "base": spec.base, "models": models,
            "parameters": spec.parameters}
    if spec.dtype is not None:
        edit["dtype"] = str(spec.dtype).removeprefix("torch.")
    if spec.random:
        edit["seed"] = 7
    session.apply(edit)
    return {name: tensor.clone() for name, tensor in session.state_dict().items()}


def difference(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor],
               base: dict[str, torch.Tensor] | None, random: bool,
               keep_dtype: bool = False) -> dict[str, Any]:
    """The largest relative difference, and how many tensors are bit-identical.

    `keep_dtype`: `ours` keeps the dtype of the document (an edit), so mergekit's output is
    compared after the same cast.
    """
    worst = 0.0
    identical = 0
    ours_total = their_total = 0.0
    for name, expected in theirs.items():
        got = ours[name]
        if keep_dtype:
            expected = expected.to(got.dtype)
        if got.shape != expected.shape or got.dtype != expected.dtype:
            raise AssertionError(f"{name}: {got.shape} {got.dtype} vs {expected.shape} "
                                 f"{expected.dtype}")
        identical += int(torch.equal(got, expected))
        if random:
            assert base is not None
            ours_total += float((got.double() - base[name].double()).square().sum())
            their_total += float((expected.double() - base[name].double()).square().sum())
            continue
        scale = float(expected.double().abs().max()) or 1.0
        worst = max(worst, float((got.double() - expected.double()).abs().max()) / scale)
    if random:
        # The size of the whole merged task vector, ours against mergekit's.
        worst = abs(ours_total ** 0.5 - their_total ** 0.5) / max(their_total ** 0.5, 1e-12)
    return {"max_relative": worst, "identical": identical, "tensors": len(theirs)}


def compare(folder: Path) -> list[dict[str, Any]]:
    """Every configuration, float32 and bfloat16 variants, with and without a dtype."""
    rows = []
    for dtype, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        paths = make_variants(folder, dtype, tag)
        base = load_file(paths["base"])
        for compute in (None, "float32", "bfloat16"):
            if dtype == torch.float32 and compute == "bfloat16":
                continue
            for name, config in configurations(paths).items():
                config = dict(config)
                if compute is not None:
                    config["dtype"] = compute
                label = f"{tag}{'/' + compute if compute else ''}"
                run = folder / f"{tag}-{compute}-{name.replace(' ', '_')}"
                run.mkdir()
                theirs = run_mergekit(config, run / "mergekit")
                random = name.startswith("dare")
                streamed = run_ours_streamed(config, run / "ours.safetensors")
                edited = run_ours_edit(config)
                rows.append({"method": name, "inputs": label,
                             "streamed": difference(streamed, theirs, base, random),
                             "edit": difference(edited, theirs, base, random, keep_dtype=True),
                             "random": random})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="work folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.folder or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        rows = compare(folder)
    if args.json:
        print(json.dumps(rows))
        return 0
    print("| method | inputs / dtype | streamed (CLI) max rel. diff | edit max rel. diff | "
          "bit-identical tensors |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        kind = " (size of the task vector)" if row["random"] else ""
        print(f"| {row['method']} | {row['inputs']} | {row['streamed']['max_relative']:.2e}{kind} "
              f"| {row['edit']['max_relative']:.2e} | {row['streamed']['identical']}/"
              f"{row['streamed']['tensors']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
