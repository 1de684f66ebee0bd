"""Train the built-in digits demo model and save its weights.

Trains ``DigitsCNN`` (``resources/demo/digits_cnn.py``) on the fixed train
split of ``resources/demo/digits.npz`` on the CPU and writes
``resources/demo/digits_cnn.safetensors``. Seeds, deterministic algorithms
and a single thread make the output bit-reproducible for a given torch
version and machine.

Usage::

    python scripts/train_demo.py
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save
from torch import nn

DEMO_DIR = Path(__file__).resolve().parents[1] / "resources" / "demo"
sys.path.insert(0, str(DEMO_DIR))

from digits_cnn import DigitsCNN  # noqa: E402
from digits_data import load_digits, split_indices  # noqa: E402

SEED = 0
EPOCHS = 15
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
SCRIPT_NAME = "scripts/train_demo.py"


def canonical_safetensors(data: bytes) -> bytes:
    """Rewrite a safetensors blob so its header has a fixed key order.

    ``safetensors`` stores ``__metadata__`` in a hash map whose iteration
    order changes from process to process, so identical weights would give
    different files. This sorts the metadata entries; the header keeps its
    length, so tensor data and offsets are untouched.

    Parameters
    ----------
    data : bytes
        A serialized safetensors file.

    Returns
    -------
    bytes
        The same file with ``__metadata__`` keys in sorted order.

    Raises
    ------
    ValueError
        If the canonical header does not fit in the original header length.
    """
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > header_len:
        raise ValueError("canonical safetensors header is longer than the original")
    return data[:8] + text.ljust(header_len, b" ") + data[8 + header_len :]


def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Return the classification accuracy of ``model`` on a dataset.

    Parameters
    ----------
    model : torch.nn.Module
        Model producing logits; it is put in evaluation mode.
    inputs : torch.Tensor
        Inputs of shape ``(N, 1, 8, 8)``.
    labels : torch.Tensor
        Integer labels of shape ``(N,)``.

    Returns
    -------
    float
        Fraction of correctly classified samples.
    """
    model.eval()
    with torch.no_grad():
        predictions = model(inputs).argmax(dim=1)
    return (predictions == labels).double().mean().item()


def train(epochs: int = EPOCHS, seed: int = SEED) -> tuple[DigitsCNN, float]:
    """Train a fresh ``DigitsCNN`` deterministically.

    Parameters
    ----------
    epochs : int, default EPOCHS
        Number of passes over the training split.
    seed : int, default SEED
        Seed for weight initialisation and batch shuffling (the train/test
        split always uses ``split_indices``' default seed).

    Returns
    -------
    model : DigitsCNN
        The trained model, in evaluation mode.
    test_accuracy : float
        Accuracy on the held-out test split.
    """
    torch.manual_seed(seed)
    inputs, labels = load_digits()
    train_idx, test_idx = split_indices(len(labels))
    x_train, y_train = inputs[train_idx], labels[train_idx]
    x_test, y_test = inputs[test_idx], labels[test_idx]

    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y_train), generator=shuffle)
        total_loss = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(batch)
        print(f"epoch {epoch:2d}/{epochs}  train loss {total_loss / len(order):.4f}")
    return model, evaluate(model, x_test, y_test)


def main(argv: list[str] | None = None) -> None:
    """Train the demo model and write its weights with safetensors.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments; ``sys.argv[1:]`` when omitted.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEMO_DIR / "digits_cnn.safetensors",
        help="output .safetensors path",
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    model, accuracy = train(epochs=args.epochs)
    elapsed = time.perf_counter() - started
    print(f"test accuracy {accuracy:.4f}  ({elapsed:.1f} s)")

    metadata = {
        "format": "pt",
        "model": "DigitsCNN",
        "num_classes": "10",
        "dataset": "resources/demo/digits.npz",
        "script": SCRIPT_NAME,
        "seed": str(SEED),
        "epochs": str(args.epochs),
        "test_accuracy": f"{accuracy:.4f}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(canonical_safetensors(save(model.state_dict(), metadata=metadata)))


if __name__ == "__main__":
    main()
