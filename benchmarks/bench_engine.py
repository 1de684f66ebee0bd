"""Engine benchmarks (issue 2): undo memory, and `inspect` time against building the model.

Run: .venv/bin/python benchmarks/bench_engine.py [--repeats N]
Writes docs/benchmarks/engine.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys

import torch
from torch import nn

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from benchmarks._common import interleaved, median, python, rss_bytes, write_fragment
from engine import Session

MIB = 2**20


def undo_memory() -> dict[str, float]:
    """History bytes and RSS growth for a whole-tensor init and a one-element set on 100M."""
    # Warm up the code paths once on a tiny tensor: torch's first indexing and
    # meta-shape calls allocate ~35 MB of one-time state that is not undo data.
    warm = nn.Module()
    warm.weight = nn.Parameter(torch.zeros(10))
    Session(warm).apply({"op": "set", "target": "weight", "index": "1", "value": 1.0})
    model = nn.Module()
    model.weight = nn.Parameter(torch.zeros(100_000_000))  # 400 MB of float32
    tensor_bytes = model.weight.numel() * model.weight.element_size()
    session = Session(model)
    gc.collect()
    before = rss_bytes()
    session.apply({"op": "init", "targets": ["weight"], "method": "normal", "seed": 0})
    gc.collect()
    init_rss = rss_bytes() - before
    init_history = session.history.nbytes
    session.apply({"op": "set", "target": "weight", "index": "12345", "value": 1.0})
    set_history = session.history.nbytes - init_history
    gc.collect()
    set_rss = rss_bytes() - before - init_rss
    return {"tensor_bytes": tensor_bytes, "init_history": init_history, "init_rss": init_rss,
            "set_history": set_history, "set_rss": set_rss}


def inspect_time(repeats: int) -> dict[str, float]:
    commands = {
        "baseline": [python(), "-c", "import torch, torchvision; torchvision.models.vit_b_16()"],
        "inspect": [python(), "main.py", "inspect", "--arch", "torchvision:vit_b_16", "--json"],
    }
    times = interleaved(commands, repeats)
    return {name: median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    memory = undo_memory()
    times = inspect_time(args.repeats)
    ratio_init = memory["init_history"] / memory["tensor_bytes"]
    ratio_init_rss = memory["init_rss"] / memory["tensor_bytes"]
    text = f"""## Engine (issue 2)

Measured with `benchmarks/bench_engine.py` on {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}.

### Undo memory on a 100M-parameter tensor ({memory['tensor_bytes'] / MIB:.0f} MiB of float32)

| edit | undo data kept by the history | process memory growth | target |
| --- | --- | --- | --- |
| `init` normal, whole tensor | {memory['init_history'] / MIB:.1f} MiB = **{ratio_init:.3f}x** the tensor | {memory['init_rss'] / MIB:.1f} MiB ({ratio_init_rss:.3f}x) | <= 1.1x |
| `set` one element | **{memory['set_history']} bytes** | {memory['set_rss'] / MIB:.2f} MiB | < 1 MB |

Process memory is the growth of RSS across the edit, after a warm-up edit on a tiny tensor
(torch's first indexing call allocates about 35 MB of one-time state).
The history keeps exactly the old values of the region an edit wrote (one copy, swapped
back on undo and forth on redo), so a whole-tensor edit costs 1.0x and a one-element edit 4 bytes.

### `inspect` of torchvision vit_b_16 (86M parameters), whole process

Median of {args.repeats} interleaved runs each.

| command | median time |
| --- | --- |
| `python -c "import torch, torchvision; torchvision.models.vit_b_16()"` (baseline) | {times['baseline']:.2f} s |
| `python main.py inspect --arch torchvision:vit_b_16 --json` | {times['inspect']:.2f} s |
| **ratio** | **{times['inspect'] / times['baseline']:.2f}x** |

`inspect` without weights builds the model on the meta device (shapes without memory or
random initialization), which is why it is faster than merely building the model.
"""
    write_fragment("engine", text)


if __name__ == "__main__":
    main()
