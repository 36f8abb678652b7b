"""What lives where: shipped models and datasets are global and read-only (st.cache_resource); a visitor's
trained models and training job live in their own st.session_state, so visitors never see each other's work."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import streamlit as st
import torch

from aecore.checkpoints import Checkpoint, CheckpointError, list_checkpoints, load_checkpoint
from aecore.data import DatasetError, load_dataset
from ui import config


@st.cache_resource(show_spinner=False)
def init_torch() -> int:
    """Once per process, before any torch work: intra-op threads sized for a small shared machine."""
    torch.set_num_threads(config.TORCH_THREADS)
    return config.TORCH_THREADS


@dataclass
class ModelEntry:
    key: str  # stable id, used in URLs: "shipped:conv_vae_z2", "session:3"
    label: str
    checkpoint: Checkpoint
    source: str  # "shipped" | "trained" | "uploaded"

    @property
    def model(self):
        return self.checkpoint.model


def describe(ckpt: Checkpoint) -> str:
    from aecore.catalog import MODELS

    preset = MODELS.get(ckpt.model_name)
    title = preset.title if preset else ckpt.model_name
    up = f", {ckpt.spec.upsample}" if ckpt.spec.is_conv and ckpt.spec.upsample != "transposed" else ""
    return f"{title} z={ckpt.spec.latent_dim}{up} · {ckpt.dataset}"


@st.cache_resource(show_spinner="Loading shipped models…")
def shipped_models() -> dict[str, ModelEntry]:
    """Checkpoints shipped in checkpoints/, loaded once per process; unreadable files are skipped."""
    out = {}
    featured = {name: i for i, name in enumerate(config.FEATURED_CHECKPOINTS)}
    paths = sorted(list_checkpoints(config.CHECKPOINT_DIR), key=lambda p: (featured.get(p.stem, len(featured)), p.stem))
    for path in paths:
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError:
            continue
        out[f"shipped:{path.stem}"] = ModelEntry(f"shipped:{path.stem}", describe(ckpt) + " (shipped)", ckpt, "shipped")
    return out


def session_models() -> dict[str, ModelEntry]:
    return st.session_state.setdefault("models", {})


def add_session_model(ckpt: Checkpoint, source: str = "trained") -> ModelEntry:
    models = session_models()
    n = st.session_state.get("model_counter", 0) + 1
    st.session_state["model_counter"] = n
    entry = ModelEntry(f"session:{n}", f"#{n} {describe(ckpt)} ({source})", ckpt, source)
    models[entry.key] = entry
    return entry


def all_models() -> dict[str, ModelEntry]:
    """This visitor's models first (newest first), then the shipped ones."""
    mine = dict(reversed(list(session_models().items())))
    return {**mine, **shipped_models()}


@st.cache_resource(show_spinner="Loading dataset…", max_entries=4)
def _dataset(name: str, max_train: int | None):
    return load_dataset(name, max_train=max_train)


def dataset(name: str):
    """The dataset, loaded once per process; None (with the error shown) when it cannot be had."""
    try:
        return _dataset(name, config.MAX_TRAIN_IMAGES)
    except DatasetError as e:
        st.error(f"{e}", icon=":material/cloud_off:")
        return None


class JobSlots:
    """A global cap on concurrent training jobs, shared by all visitors of this server."""

    def __init__(self, limit: int):
        self.limit, self._jobs, self._lock = limit, [], threading.Lock()

    def try_acquire(self, job) -> bool:
        with self._lock:
            self._jobs = [j for j in self._jobs if not j.snapshot().finished]
            if len(self._jobs) >= self.limit:
                return False
            self._jobs.append(job)
            return True

    def running(self) -> int:
        with self._lock:
            return sum(not j.snapshot().finished for j in self._jobs)


@st.cache_resource
def job_slots() -> JobSlots:
    return JobSlots(config.MAX_CONCURRENT_JOBS)
