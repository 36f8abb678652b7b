"""Caching for the Latent page: codes and the probe once per model and visitor session (trained models live only
there); projections once per server for the same codes, so visitors of a shipped model share a t-SNE layout."""
from __future__ import annotations

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


def projection(entry, codes, method, dims, seed):
    spinner = "Running t-SNE (a few seconds)…" if method == "tsne" else "Projecting…"
    with st.spinner(spinner):
        return _project(codes, method, tuple(dims), seed)


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
