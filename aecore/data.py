"""Dataset registry: every dataset as float32 image tensors (N, C, H, W) in [0, 1].

Offline datasets (``mnist-5k`` bundled in ``aecore/assets``, ``digits`` from scikit-learn) never
touch the network and never import torchvision. The others are downloaded once into
``data_dir/<name>/`` (default ``~/.cache/aecore``, env ``AECORE_DATA_DIR``) and read from there after.
Every failure a user can cause or meet (offline, corrupt cache, bad name) is a one-line DatasetError.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.request
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .datasets import (DATASETS, DEFAULT_DATASET, FREY_URL, Dataset, DatasetError,  # noqa: F401 (re-exported)
                       DatasetInfo)

OFFLINE_HINT = "use an offline dataset instead (mnist-5k, digits)"
_ASSETS = Path(__file__).resolve().parent / "assets"


_TV_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST", "svhn": "SVHN",
             "cifar10": "CIFAR10"}
_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# Files (relative to data_dir/<name>) that torchvision parses; "cached" means all of them exist.
_CACHE_FILES: dict[str, tuple[str, ...]] = {
    **{n: tuple(f"{_TV_CLASS[n]}/raw/{f}" for f in _IDX) for n in ("mnist", "fashion-mnist", "kmnist")},
    "svhn": ("train_32x32.mat", "test_32x32.mat"),
    "cifar10": tuple(f"cifar-10-batches-py/{f}" for f in
                     [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]),
    "frey": ("frey_rawface.mat",),
}
FREY_SHAPE = (560, 1965)  # the public file: 28*20 pixels x 1965 frames, uint8
FREY_TEST = 200


def default_data_dir() -> Path:
    """Where downloads are cached: $AECORE_DATA_DIR, else ~/.cache/aecore."""
    env = os.environ.get("AECORE_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aecore"


def _get_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DatasetError(f"Unknown dataset '{name}'. Choose one of: {', '.join(DATASETS)}.")
    return DATASETS[name]


def _is_cached(name: str, root: Path) -> bool:
    return all((root / name / rel).is_file() for rel in _CACHE_FILES[name])


def dataset_status(name: str, data_dir: str | Path | None = None) -> str:
    """'bundled' (offline), 'cached' (all files present in data_dir) or 'needs download'. Cheap: only stats files."""
    if _get_info(name).offline:
        return "bundled"
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return "cached" if _is_cached(name, root) else "needs download"


def _reason(err: BaseException) -> str:
    """One line, short: torchvision errors span several lines, URLError hides the cause in .reason."""
    text = " ".join(str(getattr(err, "reason", None) or err).split()) or type(err).__name__  # bare asserts
    return text if len(text) <= 200 else text[:197] + "..."


def _offline_error(name: str, url: str, where: Path, err: BaseException) -> DatasetError:
    return DatasetError(f"Could not download '{name}' from {url} ({_reason(err)}). This machine may be offline: "
                        f"{OFFLINE_HINT}, or place the file(s) at {where}.")


# ---- offline datasets: small, so the uint8/float arrays are cached read-only for the process ----

@lru_cache(maxsize=None)
def _load_mnist5k() -> tuple[np.ndarray, ...]:
    """Bundled npz -> (train_x uint8 (4000,28,28), train_y, test_x uint8 (1000,28,28), test_y)."""
    try:
        with np.load(_ASSETS / "mnist-5k.npz") as z:
            arrays = tuple(z[k] for k in ("train_x", "train_y", "test_x", "test_y"))
    except (OSError, KeyError, ValueError) as err:  # a broken install, not a user mistake
        raise DatasetError(f"The bundled {_ASSETS / 'mnist-5k.npz'} is missing or damaged; reinstall aecore.") from err
    for a in arrays:
        a.setflags(write=False)  # shared between loads; load_dataset copies before converting
    return arrays


@lru_cache(maxsize=None)
def _load_digits() -> tuple[np.ndarray, ...]:
    """scikit-learn digits -> float32 (N,8,8) already in [0,1] (raw values are 0..16), stratified 1437/360."""
    from sklearn.datasets import load_digits  # lazy: only this dataset needs scikit-learn
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 8, 8)
    tr, te = train_test_split(np.arange(len(y)), test_size=360, stratify=y, random_state=0)
    tr, te = np.sort(tr), np.sort(te)
    arrays = (x[tr], y[tr], x[te], y[te])
    for a in arrays:
        a.setflags(write=False)
    return arrays


# ---- downloaded datasets ----

def _download(name: str, url: str, dest: Path) -> None:
    """Fetch url to dest via a temp file + atomic rename, so a killed download never leaves a partial dest."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")  # same folder, so os.replace is atomic
    except OSError as err:
        raise DatasetError(f"Cannot write to {dest.parent} ({_reason(err)}); set AECORE_DATA_DIR to a "
                           "writable folder.") from err
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            expected, size = resp.length, 0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                size += len(chunk)
        if expected is not None and size < expected:
            raise OSError(f"connection closed after {size} of {expected} bytes")
        os.replace(tmp, dest)
    except (OSError, ValueError, http.client.HTTPException) as err:  # URLError/timeouts are OSError
        raise _offline_error(name, url, dest, err) from err
    finally:
        Path(tmp).unlink(missing_ok=True)


def _read_frey(path: Path) -> np.ndarray | None:
    """The .mat as uint8 (1965, 28, 20) frames, or None when missing / unparsable / wrong shape."""
    import scipy.io  # lazy: only Frey needs it here

    try:
        ff = scipy.io.loadmat(path)["ff"]
    except Exception:  # scipy raises ValueError/OSError/KeyError/zlib errors on truncated or foreign files
        return None
    if ff.shape != FREY_SHAPE or ff.dtype != np.uint8:
        return None
    return np.ascontiguousarray(ff.T.reshape(-1, 28, 20))  # each column is one image, row-major 28x20


def _load_frey(root: Path, download: bool) -> tuple:
    path = root / "frey" / "frey_rawface.mat"
    faces = _read_frey(path)
    if faces is None and download:
        path.unlink(missing_ok=True)  # missing, partial or corrupt cache: fetch (again), once
        _download("frey", FREY_URL, path)
        if (faces := _read_frey(path)) is None:
            path.unlink(missing_ok=True)
            raise DatasetError(f"The file downloaded from {FREY_URL} is not the Frey Face .mat (ff {FREY_SHAPE}).")
    if faces is None:
        raise DatasetError(f"'frey' is not cached (or is corrupt) at {path} and download=False: {OFFLINE_HINT}.")
    perm = np.random.default_rng(0).permutation(len(faces))  # fixed split: last 200 of a seeded shuffle
    return faces[perm[:-FREY_TEST]], None, faces[perm[-FREY_TEST:]], None


def _read_torchvision(name: str, folder: Path, download: bool) -> tuple:
    """Construct the train and test torchvision datasets and take their raw arrays (no per-item PIL)."""
    import torchvision.datasets  # lazy: seconds to import, and the offline path must not need it

    cls, arrays = getattr(torchvision.datasets, _TV_CLASS[name]), []
    for train in (True, False):
        split = {"split": "train" if train else "test"} if name == "svhn" else {"train": train}
        ds = cls(str(folder), download=download, **split)
        x = np.asarray(ds.data)  # MNIST*: (N,28,28); SVHN: (N,3,32,32); CIFAR10: (N,32,32,3)
        arrays += [x.transpose(0, 3, 1, 2) if name == "cifar10" else x,
                   np.asarray(ds.labels if name == "svhn" else ds.targets, dtype=np.int64)]
    return tuple(arrays)


def _load_torchvision(name: str, root: Path, download: bool) -> tuple:
    """Download (if needed) and read via torchvision; a cache that exists but won't parse is deleted and
    fetched once more. SVHN/CIFAR-10 files are md5-checked by torchvision itself; MNIST-family raw files
    have no md5 after extraction, so for them parsing (plus the shape check in load_dataset) is the check."""
    folder = root / name
    if not download and not _is_cached(name, root):
        raise DatasetError(f"'{name}' is not cached in {folder} and download=False: {OFFLINE_HINT}.")
    for attempt in range(2):
        try:
            return _read_torchvision(name, folder, download)
        except Exception as err:  # torchvision raises RuntimeError/URLError/AssertionError/... ; report as one line
            if not _is_cached(name, root):  # files absent after the attempt: the download failed
                raise _offline_error(name, DATASETS[name].source, folder, err) from err
            if attempt or not download:
                raise DatasetError(f"The cached files for '{name}' in {folder} are corrupt ({_reason(err)}); "
                                   "delete that folder and load again.") from err
            for rel in _CACHE_FILES[name]:  # keep md5-checked archives, so torchvision only re-extracts
                (folder / rel).unlink(missing_ok=True)
    raise AssertionError("unreachable")


def _subset(x: np.ndarray, y: np.ndarray | None, n: int | None, seed: int) -> tuple:
    """A deterministic random subset of n rows (order preserved); everything when n is None or >= len."""
    if n is not None and n < 1:
        raise DatasetError(f"max_train/max_test must be at least 1, got {n}.")
    if n is None or n >= len(x):
        return x, y
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[idx], None if y is None else y[idx]


def _to_images(x: np.ndarray, info: DatasetInfo) -> torch.Tensor:
    """uint8 0..255 or float 0..1 array, (N,H,W) or (N,C,H,W) -> fresh float32 (N,C,H,W) tensor in [0,1]."""
    x = x[:, None] if x.ndim == 3 else x
    if tuple(x.shape[1:]) != info.shape:
        raise DatasetError(f"'{info.name}' has images of shape {tuple(x.shape[1:])}, expected {info.shape}: "
                           "the cached files look wrong; delete them and load again.")
    out = torch.from_numpy(np.array(x, dtype=np.float32, order="C"))  # np.array copies: never shares the cache
    return out.div_(255.0) if x.dtype == np.uint8 else out


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True,
                 max_train: int | None = None, max_test: int | None = None) -> Dataset:
    """Load a dataset by registry name as float32 (N, C, H, W) tensors in [0, 1] plus int64 labels (or None).

    download=False never touches the network (DatasetError if not cached). max_train / max_test keep a
    fixed random subset (seeds 0 / 1, not stratified) so memory stays bounded; the full files are still read.
    """
    info = _get_info(name)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if name == "mnist-5k":
        arrays = _load_mnist5k()
    elif name == "digits":
        arrays = _load_digits()
    elif name == "frey":
        arrays = _load_frey(root, download)
    else:
        arrays = _load_torchvision(name, root, download)
    (trx, try_), (tex, tey) = _subset(*arrays[:2], max_train, 0), _subset(*arrays[2:], max_test, 1)
    labels = [None if y is None else torch.from_numpy(np.array(y, dtype=np.int64)) for y in (try_, tey)]
    return Dataset(info, _to_images(trx, info), labels[0], _to_images(tex, info), labels[1])


def carve_validation(data: Dataset, fraction: float, seed: int = 0) -> tuple[Dataset, torch.Tensor]:
    """Split a seeded `fraction` of the training images off as a validation set, for choosing epochs and
    hyper-parameters without ever looking at the test split. Returns (data with the smaller train split, val_x)."""
    if not 0 < fraction < 1:
        raise DatasetError(f"the validation fraction must be between 0 and 1, got {fraction}")
    n = len(data.train_x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * fraction))
    val, keep = order[:n_val].sort().values, order[n_val:].sort().values
    labels = None if data.train_y is None else data.train_y[keep]
    return Dataset(data.info, data.train_x[keep], labels, data.test_x, data.test_y), data.train_x[val]
