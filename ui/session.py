"""This visitor's state in st.session_state: every key the app keeps there, behind one typed accessor each, so a
misspelt key fails here, at import, instead of reading a silent None on some page (the sidebar once read "job",
which nothing wrote). Widget values stay under their widgets' own `key=`s, Streamlit's public way to set them."""
from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

import streamlit as st

T = TypeVar("T")


class Slot(Generic[T]):
    """One session-state entry: `get()` (None or the default when unset), `set()`, `pop()`."""

    def __init__(self, key: str, default: Callable[[], T] | None = None):
        self.key, self._default = key, default

    def get(self) -> T | None:
        if self._default is not None and self.key not in st.session_state:
            st.session_state[self.key] = self._default()
        return st.session_state.get(self.key)

    def set(self, value: T | None) -> None:
        st.session_state[self.key] = value

    def pop(self) -> T | None:
        return st.session_state.pop(self.key, None)


# models and runs (ui/state.py, ui/training.py, ui/widgets.py, ui/sidebar.py)
picked_model: Slot[str] = Slot("model_key")  # ModelEntry.key of the model the pages show
models: Slot[dict] = Slot("models", dict)  # this visitor's trained and uploaded models, by key
model_counter: Slot[int] = Slot("model_counter", int)  # numbers them #1, #2, ...
run: Slot[Any] = Slot("run")  # ui.training.RunInfo of this visitor's training run
loaded_upload: Slot[str] = Slot("ckpt_loaded")  # file id of the checkpoint upload already loaded
page_models: Slot[dict] = Slot("page_models", dict)  # page -> the model key it last showed (ui/widgets.py)
model_box: Slot[str] = Slot("model_box")  # the sidebar's Model box (its widget key)


def choose_model(key: str) -> None:
    """Show model `key` on every page: drop the Model box's own state, so it opens on the choice next run."""
    picked_model.set(key)
    model_box.pop()


def download_allowed(dataset: str) -> Slot[bool]:
    """The visitor agreed to download `dataset` for an uploaded checkpoint (ui/widgets.py)."""
    return Slot(f"fetch_ok:{dataset}")


# Checkerboard Lab (ui/checkerboard/)
quick_set: Slot[dict] = Slot("cb_quick")  # the quick set being trained here: todo, done, run, error, ...
quick_set_error: Slot[str] = Slot("cb_quick_error")  # why the last quick set stopped, shown once
compared_group: Slot[str] = Slot("cb_group")  # which set of models the comparison shows
group_picker: Slot[str] = Slot("cb_group_pick")  # the "Models compared" box (its widget key)
recon_memo: Slot[dict] = Slot("cb_recon_memo", dict)  # reconstructions per model, not hashable for st.cache_*
distill_seed: Slot[int] = Slot("cb_seed", int)  # Reseed's counter for the random decoders
arithmetic_input: Slot[str] = Slot("cb_input")  # the calculator's input selectbox (its widget key)

# Latent Space (ui/latentview.py)
latent_memo: Slot[dict] = Slot("latent_cache", dict)  # codes and projections per model, not hashable either

# Evaluation Lab (ui/evaluation/)
evaluation_memo: Slot[dict] = Slot("ev_memo", dict)  # heavy results per model and setting, oldest dropped first
mixture_table: Slot[list] = Slot("ev_mix_initial")  # the blob table's starting rows: the editor keeps edits as deltas
