"""Loading and splitting helpers for the built-in digits demo data.

``digits.npz`` holds ``images`` (``uint8``, ``(1797, 8, 8)``, values 0..16)
and ``labels`` (``(1797,)``, values 0..9); see ``DATA_LICENSE.md`` for its
source and licence.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import torch

__all__ = ["DEFAULT_PATH", "PIXEL_MAX", "load_digits", "split_indices"]

DEFAULT_PATH = Path(__file__).resolve().parent / "digits.npz"
"""Location of the bundled ``digits.npz``."""

PIXEL_MAX = 16
"""Largest pixel value in the source images (each pixel counts set bits in a 4x4 block)."""


def load_digits(path: str | PathLike[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the digits dataset as model-ready tensors.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Path of the ``.npz`` file; the bundled ``digits.npz`` when omitted.

    Returns
    -------
    inputs : torch.Tensor
        ``float32`` tensor of shape ``(N, 1, 8, 8)`` scaled to ``[0, 1]``.
    labels : torch.Tensor
        ``int64`` tensor of shape ``(N,)``.
    """
    with np.load(DEFAULT_PATH if path is None else Path(path)) as data:
        images = np.asarray(data["images"])
        labels = np.asarray(data["labels"])
    inputs = torch.from_numpy(images.astype(np.float32) / PIXEL_MAX).unsqueeze(1)
    return inputs, torch.from_numpy(labels.astype(np.int64))


def split_indices(
    n: int, seed: int = 0, test_fraction: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into fixed, shuffled train and test indices.

    Parameters
    ----------
    n : int
        Number of samples.
    seed : int, default 0
        Seed of the ``torch.Generator`` used for the permutation.
    test_fraction : float, default 0.2
        Fraction of samples put in the test split (rounded to the nearest
        integer count).

    Returns
    -------
    train_idx : torch.Tensor
        ``int64`` indices of the training samples.
    test_idx : torch.Tensor
        ``int64`` indices of the test samples.

    Raises
    ------
    ValueError
        If ``n`` is negative or ``test_fraction`` is outside ``[0, 1]``.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=generator)
    n_test = round(n * test_fraction)
    return perm[n_test:], perm[:n_test]
