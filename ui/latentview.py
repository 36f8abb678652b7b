"""Caching for the Latent page: codes and the probe once per model and visitor session (trained models live only
there); projections once per server for the same codes, so visitors of a shipped model share a t-SNE layout; and
the t-SNE layout computed in the background while another projection is on screen (`prefetch`)."""
from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import streamlit as st
import torch

from aecore.latent import decode_codes, encode_all, project
from aecore.metrics import probe_accuracy
from ui import session

PROBE_TRAIN_LIMIT = 5000  # logistic regression on more codes costs seconds and changes little


def _cache() -> dict:
    return session.latent_memo.get()


def _memo(key, compute):
    cache = _cache()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def test_codes(entry, data) -> np.ndarray:
    return _memo((entry.key, id(entry.model), "codes"), lambda: encode_all(entry.model, data.test_x).numpy())


@st.cache_data(show_spinner=False, max_entries=32)
def _project(codes: np.ndarray, method: str, dims: tuple, seed: int):
    """Keyed by the codes' values, so every visitor of a shipped model shares one t-SNE layout (~1-3 s each)."""
    return project(codes, method, dims, seed)


def _dims(method: str, dims) -> tuple:
    return tuple(int(d) for d in dims) if method == "dims" else (0, 1)  # only "dims" reads them: one cache entry


def projection(entry, codes, method, dims, seed):
    spinner = "Running t-SNE (a few seconds)…" if method == "tsne" else "Projecting…"
    with st.spinner(spinner):  # a layout being prefetched: this waits for it (the cache locks each key), no rerun
        return _project(codes, method, _dims(method, dims), seed)


# t-SNE takes 1-3 s on 2 cores, PCA milliseconds. While a visitor looks at the PCA view, one background thread
# computes the t-SNE layout into the shared cache, so the click on t-SNE finds it ready. One thread: at most one
# core; bounded to the sizes the page shows, and each layout is asked for once per server.
PREFETCH_MAX_CODES = 2000
_prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aecore-prefetch")
_prefetched: dict[tuple, Future] = {}
_prefetched_lock = threading.Lock()


def prefetch(codes: np.ndarray, method: str, dims, seed: int) -> Future | None:
    """Start computing a projection in the background, once per codes, method, dims and seed; None if too big."""
    if len(codes) > PREFETCH_MAX_CODES:
        return None
    key = (hashlib.sha1(np.ascontiguousarray(codes).tobytes()).hexdigest(), method, _dims(method, dims), seed)
    with _prefetched_lock:
        if key not in _prefetched:
            if len(_prefetched) >= 256:
                _prefetched.clear()
            _prefetched[key] = _prefetcher.submit(_project, codes, method, key[2], seed)
        return _prefetched[key]


def probe(entry, data) -> float:
    def compute():
        train_codes = encode_all(entry.model, data.train_x[:PROBE_TRAIN_LIMIT])
        return probe_accuracy(train_codes, data.train_y[:PROBE_TRAIN_LIMIT], test_codes(entry, data), data.test_y)

    with st.spinner("Fitting the latent probe…"):
        return _memo((entry.key, id(entry.model), "probe"), compute)


def labels(data):
    return None if data.test_y is None else data.test_y.numpy()


def decode(model, codes) -> torch.Tensor:
    return decode_codes(model, torch.as_tensor(np.asarray(codes), dtype=torch.float32))
