"""What lives where: shipped models and datasets are global and read-only (st.cache_resource); a visitor's
trained models and training job live in their own st.session_state, so visitors never see each other's work."""
from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass

import streamlit as st

from aecore import fastpath, jobs, runtime
from aecore.checkpoints import Checkpoint, CheckpointError, list_checkpoints, load_checkpoint
from aecore.data import DatasetError, load_dataset
from ui import config, session
from ui.text import plain


# scikit-learn (PCA, t-SNE, probes: 0.9 s to import) stays lazy: warmed, it took the server with a run going from
# ~950 MB to 1,071 MB RSS (2026-12-03, bench/watched.py), past the 1 GB a small deployment has. For the same reason
# the server never imports torch._dynamo (~150 MB with triton): no torchvision (aecore.viz.tile lays out the image
# grids) and no torch.optim optimizer (the Evaluation Lab's fits use scipy); test_app.py and test_runs.py check.


def warm_up() -> None:
    """What a fresh server does in the background: measure the fast paths, start the fork server (so the first Start
    does not wait for either), load the shipped models (0.7 s), compute the Checkerboard Lab's shipped
    reconstructions, then freeze the garbage collector's view of all that.

    Why freeze: Streamlit runs a full `gc.collect(2)` after every script run (`runner.postScriptGC`), holding the GIL,
    so the rerun's end reaches the browser only after it. With torch, scikit-learn and plotly loaded that walks
    ~500k long-lived objects: 0.14-0.35 s added to every interaction (2 cores, 2026-12-03). `gc.freeze()` moves
    them out of the collector's sight; everything made later is still collected."""
    fastpath.plan().settle()  # every path, training's too: the first Start then waits for none
    jobs.warm_up()
    shipped_models()
    from ui.checkerboard.trained import warm_shipped_sets  # here: that module imports this one

    warm_shipped_sets()
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()


@st.cache_resource(show_spinner=False)
def init_runtime() -> int:
    """Once per process: the server's torch threads from the CPU budget it really has, one BLAS thread, one heap for
    all its threads (runtime.py), and warm_up() in a background thread."""
    runtime.share_one_heap()
    runtime.one_blas_thread()
    threads = runtime.use_threads(runtime.cpu_budget())
    threading.Thread(target=warm_up, name="aecore-warm-up", daemon=True).start()
    return threads


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
        out[f"shipped:{path.stem}"] = ModelEntry(f"shipped:{path.stem}", describe(ckpt), ckpt, "shipped")
    return out


def session_models() -> dict[str, ModelEntry]:
    return session.models.get()


def add_session_model(ckpt: Checkpoint, source: str = "trained") -> ModelEntry:
    models = session_models()
    n = session.model_counter.get() + 1
    session.model_counter.set(n)
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
        st.error(plain(str(e)), icon=":material/cloud_off:")  # the message can quote a name from a file
        return None


class RunRegistry:
    """Every training run on this server, by id (shared by all visitors): the cap on concurrent runs, the CPU budget
    split between them, reattaching a run after a page reload, and a reaper thread that stops runs nobody watches.

    A run is watched while some page polls it (`heartbeat`: the Train page's live view and every page's sidebar do,
    every couple of seconds). A run unwatched for `orphan_after_s` (a closed tab, a reload that lost the run id) is
    stopped, and killed if it has not stopped `kill_after_s` later, so its slot is always freed.
    """

    def __init__(self, limit: int, orphan_after_s: float = config.ORPHAN_AFTER_S, kill_after_s: float = 10.0,
                 keep_finished_s: float = 900.0, background: bool = True):
        self.limit, self.orphan_after_s, self.kill_after_s = limit, orphan_after_s, kill_after_s
        self.keep_finished_s = keep_finished_s
        self._runs: dict = {}  # run id -> RunInfo
        self._lock = threading.Lock()
        if background:  # tests call reap() themselves
            threading.Thread(target=self._reap_forever, name="aecore-run-reaper", daemon=True).start()

    def _active(self) -> list:
        return [r for r in self._runs.values() if not r.job.snapshot().finished]

    def reserve(self, run) -> bool:
        """Register a new run if a slot is free (the caller starts it); False when the server is full."""
        with self._lock:
            if len(self._active()) >= self.limit:
                return False
            self._runs[run.run_id] = run
        return True

    def threads_for_new_run(self) -> int:
        with self._lock:
            return runtime.threads_for(len(self._active()) + 1)

    def get(self, run_id: str | None):
        with self._lock:
            return self._runs.get(run_id) if run_id else None

    def heartbeat(self, run_id: str) -> None:
        run = self.get(run_id)
        if run is not None:
            run.last_seen = time.monotonic()

    def running(self) -> int:
        with self._lock:
            return len(self._active())

    def reap(self, now: float | None = None) -> None:
        """Stop unwatched runs, kill runs that ignored Stop, share the CPU budget, forget old finished runs."""
        now = time.monotonic() if now is None else now
        with self._lock:
            active = self._active()
            for run in active:
                if run.stop_requested is None and now - run.last_seen > self.orphan_after_s:
                    run.request_stop(now, "nobody was watching it")
                elif run.stop_requested is not None and now - run.stop_requested > self.kill_after_s:
                    run.job.kill("it did not stop in time and was ended")
            share = runtime.threads_for(max(1, len(active)))
            for run in active:
                run.job.set_threads(share)
            for run_id, run in list(self._runs.items()):
                if run.job.snapshot().finished and now - run.last_seen > self.keep_finished_s:
                    del self._runs[run_id]

    def _reap_forever(self) -> None:
        while True:
            time.sleep(1.0)
            try:
                self.reap()
            except Exception:  # the reaper must outlive any one bad run
                pass


@st.cache_resource
def run_registry() -> RunRegistry:
    return RunRegistry(config.MAX_CONCURRENT_JOBS)
