"""Starting, watching and finishing this visitor's training job (kept in st.session_state)."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field

import streamlit as st

from aecore.catalog import get_preset
from aecore.checkpoints import Checkpoint, save_checkpoint, to_bytes
from aecore.data import carve_validation
from aecore.jobs import TrainingJob
from aecore.train import TrainConfig, build_seeded
from ui import config, session
from ui.state import add_session_model, dataset, run_registry

# The Train page's defaults per model, chosen so a default run on the bundled 4000 images finishes in about a
# minute or less on 2 CPU cores. The conv VAE's recipe is the one bench/time_to_quality.py measured: it reaches the
# tutorial's 20-epoch test -ELBO (about 167 nats) several times sooner than the tutorial's own loop.
DEFAULT_EPOCHS = {"linear_ae": 10, "mlp_ae": 10, "sparse_ae": 10, "mlp_vae": 10, "conv_vae": 12, "beta_vae": 5,
                  "conv_ae": 2, "denoising_ae": 2, "conv_ae_narrow": 3, "talk_vae": 10}
DEFAULT_RECIPE = {"conv_vae": dict(batch_size=32, lr=3e-3, lr_schedule="cosine"),
                  "conv_ae_narrow": dict(batch_size=32)}  # the Checkerboard Lab's set (ui/checkerboard/quick_train.py)
PLAIN_RECIPE = dict(batch_size=100, lr=1e-3, lr_schedule="constant")


def default_recipe(preset: str) -> dict:
    """Epochs, batch size, learning rate and schedule the Train page starts from for `preset`."""
    return {"epochs": DEFAULT_EPOCHS.get(preset, 5), **PLAIN_RECIPE, **DEFAULT_RECIPE.get(preset, {})}


@dataclass
class RunInfo:
    """What the visitor asked for, kept beside the job so the result can be labelled and saved."""

    job: TrainingJob
    preset: str
    dataset: str
    config: TrainConfig
    run_id: str = field(default_factory=lambda: secrets.token_urlsafe(9))  # unguessable: it is in the URL
    last_seen: float = field(default_factory=time.monotonic)  # the last time a page polled it (RunRegistry)
    stop_requested: float | None = None  # monotonic time of Stop
    stop_reason: str | None = None
    entry_key: str | None = None
    finalized: bool = False
    metrics: dict = field(default_factory=dict)
    file_bytes: bytes | None = None

    def request_stop(self, now: float | None = None, reason: str = "you pressed Stop") -> None:
        if self.stop_requested is None:
            self.stop_requested, self.stop_reason = time.monotonic() if now is None else now, reason
        self.job.stop()


def current_run() -> RunInfo | None:
    """This visitor's run; after a page reload, the run named by `?run=` in the URL is taken back."""
    run = session.run.get()
    if run is None:
        run = run_registry().get(st.query_params.get("run"))
        if run is not None:
            session.run.set(run)
    if run is not None:
        run_registry().heartbeat(run.run_id)
    return run


def is_running() -> bool:
    run = current_run()
    return run is not None and not run.job.snapshot().finished


VALIDATION_FRACTION = 0.1  # carved off the training split when the visitor keeps the best epoch


def start(preset_name: str, dataset_name: str, latent_dim: int, upsample: str, cfg: TrainConfig,
          keep_best: bool = False) -> str | None:
    """Start a job; returns a message for the visitor if it could not start. keep_best: hold out a validation
    split and end with the weights of the epoch that did best on it (the test split never chooses)."""
    if is_running():
        return "A training run is already going: stop it first (one run per visitor)."
    if cfg.epochs > config.MAX_EPOCHS:
        return f"This server allows at most {config.MAX_EPOCHS} epochs per run."
    data = dataset(dataset_name)
    if data is None:
        return "The dataset could not be loaded (see above)."
    preset = get_preset(preset_name)
    model = build_seeded(preset.spec(data.shape, latent_dim, upsample), cfg.seed)
    registry = run_registry()
    fit_data, val_x = carve_validation(data, VALIDATION_FRACTION) if keep_best else (data, None)
    job = TrainingJob(model, fit_data.train_x, data.test_x, cfg, preview_images=data.test_x[:10],
                      threads=registry.threads_for_new_run(), labels=(fit_data.train_y, data.test_y),
                      metrics_iw_samples=10, val_x=val_x, keep_best=keep_best)
    run = RunInfo(job, preset_name, dataset_name, cfg)
    if not registry.reserve(run):
        return (f"The server is busy: {config.MAX_CONCURRENT_JOBS} training runs are going on already. "
                "Please try again in a minute.")
    job.start()
    session.run.set(run)
    st.query_params["run"] = run.run_id  # a reload of this page finds the run again
    return None


def finish(run: RunInfo) -> None:
    """Once, as soon as the job ends: add the model to the picker and prepare the download. The test metrics come
    a few seconds later from the worker (`update_metrics`); nothing waits for them."""
    snap = run.job.snapshot()
    if run.finalized or not snap.finished:
        return
    run.finalized = True
    if snap.step == 0:
        return
    extra = {"status": snap.status, "train_seconds": round(snap.elapsed_s, 1), "source": "app"}
    if snap.selected_epoch:
        extra["selected_epoch"] = snap.selected_epoch  # chosen on the validation split, never on test
    ckpt = Checkpoint(run.job.model.cpu().eval(), run.preset, run.dataset, run.config, snap.history, {}, extra=extra,
                      timelapse=run.job.timelapse())
    entry = add_session_model(ckpt)
    run.entry_key = entry.key
    run.file_bytes = to_bytes(ckpt)
    session.choose_model(entry.key)
    update_metrics(run)


def update_metrics(run: RunInfo) -> bool:
    """Copy the worker's test metrics into the checkpoint once they arrive; True when they are in."""
    if run.metrics:
        return True
    metrics = run.job.snapshot().metrics
    if not metrics or run.entry_key is None:
        return False
    from ui.state import session_models

    entry = session_models().get(run.entry_key)
    run.metrics = metrics
    if entry is not None:
        entry.checkpoint.metrics = metrics
        run.file_bytes = to_bytes(entry.checkpoint)
    return True


def save_locally(run: RunInfo, name: str) -> str:
    """Write the checkpoint under checkpoints/ (local use only); returns a message."""
    if config.SHARED:
        return "This is a shared demo: use Download instead (nothing is written on the server)."
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")
    if not stem:
        return "Give the checkpoint a name with letters or digits."
    path = config.CHECKPOINT_DIR / f"{stem}.pt"
    if path.exists():
        return f"{path.name} exists already: choose another name (nothing was overwritten)."
    from ui.state import session_models

    save_checkpoint(session_models()[run.entry_key].checkpoint, path)
    return f"Saved to checkpoints/{path.name}."
