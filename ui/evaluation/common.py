"""What the Evaluation Lab's sections share: which models can be judged, the dataset, and cached heavy results.

Results are cached per process (st.cache_resource) for shipped models and per visitor for trained ones, keyed by
the model's key and object identity, so a retrained "#1" never reuses the old one's numbers.
"""
from __future__ import annotations

import streamlit as st

from aecore import evaluation as ev
from ui import session
from ui.state import ModelEntry, all_models, dataset
from ui.widgets import url_value

DATASET = "mnist-5k"  # the bundled digits: every section works offline


def vaes() -> dict[str, ModelEntry]:
    """VAEs trained on the bundled digits (the visitor's first), the models whose likelihood and samples we judge."""
    return {k: e for k, e in all_models().items()
            if e.model.variational and e.checkpoint.dataset == DATASET}


def pick_vae(label: str, url_key: str, default: str = "shipped:conv_vae_z2", where=st) -> ModelEntry | None:
    models = vaes()
    if not models:
        where.info("No VAE trained on the bundled digits is available: train one on the Train page.")
        return None
    keys = list(models)
    wanted = url_value(url_key, default if default in keys else keys[0], keys)
    key = where.selectbox(label, keys, keys.index(wanted), format_func=lambda k: models[k].label, key=f"ev_{url_key}")
    return models[key]


def data():
    return dataset(DATASET)


def model_id(entry: ModelEntry) -> str:
    return f"{entry.key}@{id(entry.checkpoint)}"


@st.cache_resource(show_spinner=False, max_entries=4)
def digit_classifier(seed: int = 0):
    """The digit counter for coverage: logistic regression on the training split; (classifier, test accuracy)."""
    d = data()
    clf = ev.digit_classifier(d.train_x, d.train_y.numpy(), seed)
    return clf, float(clf.score(d.test_x.flatten(1).numpy(), d.test_y.numpy()))


MEMO_LIMIT = 24  # results kept per visitor; each is at most a few hundred KB


def memoize(key: tuple, compute):
    """compute() once per visitor and key; the oldest results go first once MEMO_LIMIT are kept. Per visitor, not
    per process: a visitor's trained models live only in their session."""
    memo = session.evaluation_memo.get()
    if key not in memo:
        while len(memo) >= MEMO_LIMIT:
            memo.pop(next(iter(memo)))
        memo[key] = compute()
    return memo[key]
