"""Build ``resources/demo/digits.npz`` from scikit-learn's bundled digits.

scikit-learn ships the UCI "Optical Recognition of Handwritten Digits" test
set (1,797 images of 8x8 pixels, values 0..16) inside the package, so no
download is needed. scikit-learn is only required to run this script; the
project itself does not depend on it.

Usage::

    pip install scikit-learn
    python scripts/make_digits_dataset.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "resources" / "demo" / "digits.npz"


def build_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Load the bundled digits and convert them to compact arrays.

    Returns
    -------
    images : numpy.ndarray
        ``uint8`` array of shape ``(1797, 8, 8)`` with values in ``0..16``.
    labels : numpy.ndarray
        ``uint8`` array of shape ``(1797,)`` with values in ``0..9``.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw_images = np.asarray(bunch.images)
    raw_labels = np.asarray(bunch.target)
    if raw_images.shape != (1797, 8, 8) or raw_labels.shape != (1797,):
        raise ValueError(f"unexpected digits shapes {raw_images.shape}, {raw_labels.shape}")
    images = raw_images.astype(np.uint8)
    labels = raw_labels.astype(np.uint8)
    if not np.array_equal(images, raw_images) or images.max() > 16:
        raise ValueError("digits images are not integers in 0..16")
    if not np.array_equal(labels, raw_labels) or labels.max() > 9:
        raise ValueError("digits labels are not integers in 0..9")
    return images, labels


def main(argv: list[str] | None = None) -> None:
    """Write the digits arrays to a compressed ``.npz`` file.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments; ``sys.argv[1:]`` when omitted.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz path")
    args = parser.parse_args(argv)
    images, labels = build_arrays()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, images=images, labels=labels)


if __name__ == "__main__":
    main()
