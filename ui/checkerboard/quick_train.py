"""Section 4 of the Checkerboard Lab, part 2: training the quick comparison set right on the page. Offers the
models missing from a set (a link to the Train page, or a button that trains them here) and trains them one after
another in training worker processes (aecore/jobs.py), counted by the server-wide run registry; the page stays
usable, shows progress, and can cancel.
"""
from __future__ import annotations

import os

import numpy as np
import streamlit as st

from aecore.catalog import get_preset
from aecore.checkpoints import Checkpoint
from aecore.distill import UpsampleGroup, recipe_of
from aecore.models import UPSAMPLE_HELP
from aecore.jobs import TrainingJob
from aecore.train import TrainConfig, build_seeded
from ui import config, session
from ui.state import add_session_model, dataset, run_registry
from ui.widgets import fmt_seconds


# The set this page can train by itself, and the one shipped (bench/build_checkpoints.py, same recipe): the narrow
# conv AE (its decoder ends in the upsampling layer, so what that layer does shows), batch 32 so that 3 epochs are
# 375 steps. Training hides the pattern slowly: the transposed k3 decoder scores 1.4, 2.6, 2.0, 2.1 (period 2)
# after epochs 1-4, the resize decoders about 0. QUICK_MAX_STEPS (None here) only exists so a test can run the
# whole flow in seconds.
QUICK_PRESET, QUICK_DATASET, QUICK_EPOCHS, QUICK_BATCH, QUICK_MAX_STEPS = "conv_ae_narrow", "mnist-5k", 3, 32, None
# Seconds per epoch of that recipe on the bundled 4,000 images (test pass included), 2 idle CPU cores, measured:
# resize and sub-pixel decoders run their last 3x3 convolution at full resolution, hence slower.
SECONDS_PER_EPOCH = {"transposed": 7.0, "transposed4": 7.5, "nearest": 10.0, "bilinear": 10.0, "subpixel": 9.0}


def _quick_config() -> TrainConfig:
    return get_preset(QUICK_PRESET).config(epochs=min(QUICK_EPOCHS, config.MAX_EPOCHS), batch_size=QUICK_BATCH,
                                           max_steps=QUICK_MAX_STEPS)


def _quick_recipe(shape) -> tuple:
    """The comparison recipe of models trained by the button below (so they group with identical ones)."""
    return recipe_of(QUICK_PRESET, QUICK_DATASET, get_preset(QUICK_PRESET).spec(shape), _quick_config())


def _offer_training(group: UpsampleGroup, missing: list[str], quick: tuple, quick_missing: list[str]) -> None:
    cfg = group.config
    names = ", ".join(f"**{m}**" for m in missing)
    with st.container(border=True):
        st.markdown(f"Missing from this set: {names}.")
        a, b = st.columns([3, 2], vertical_alignment="center")
        with a:
            params = {"preset": group.model_name, "dataset": group.dataset, "latent": group.spec["latent_dim"],
                      "epochs": cfg["epochs"], "seed": cfg["seed"], "noise": cfg["noise"], "upsample": missing[0]}
            st.page_link("pages/train.py", label="Train one on the Train page with these settings",
                         icon=":material/model_training:", query_params=params)
            extra = []
            if cfg["batch_size"] != 100:
                extra.append(f"batch size {cfg['batch_size']}")
            if cfg["lr"] != 1e-3:
                extra.append(f"learning rate {cfg['lr']:g}")
            if cfg.get("lr_schedule", "constant") != "constant":
                extra.append(f"{cfg['lr_schedule']} learning-rate decay")
            st.caption(f"It opens with **Decoder upsampling** set to {missing[0]} ({UPSAMPLE_HELP[missing[0]]})"
                       + (f"; for the others pick: {', '.join(f'{m} ({UPSAMPLE_HELP[m]})' for m in missing[1:])}"
                          if missing[1:] else "")
                       + (f"; also set {', '.join(extra)}" if extra else "") + ". It appears here when done.")
        with b:
            _train_here_button(quick_missing, switch_to=None if group.recipe == quick else repr(quick))


def _offer_quick_set(quick: tuple, quick_missing: list[str]) -> None:
    """Under a complete set of another recipe: the conv AE set, where the pattern survives training."""
    with st.container(border=True):
        a, b = st.columns([1, 1], vertical_alignment="center")
        a.markdown("These decoders can smooth the pattern away after their last upsampling. A decoder that *ends* "
                   "in its upsampling layer, like the conv AE's, cannot: "
                   + ("compare with that set." if not quick_missing else "train that set to compare."))
        with b:
            _train_here_button(quick_missing, switch_to=repr(quick),
                               what=f"Train a narrow conv AE set of {len(quick_missing)} here")


def show_group(group_id: str) -> None:
    """Make the comparison show this set: the picker's own state is dropped so that it starts from it."""
    session.compared_group.set(group_id)
    session.group_picker.pop()


def _busy_factor() -> float:
    """How much slower than idle this machine is right now: 1-minute load average per core, at least 1."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


def _estimate_seconds(mode: str) -> float:
    """Seconds to train one model of the quick set here and now."""
    return SECONDS_PER_EPOCH.get(mode, 14.0) * _quick_config().epochs * _busy_factor()


def _train_here_button(missing: list[str], switch_to: str | None = None, what: str | None = None) -> None:
    """Train the quick set's missing models; `switch_to`: show that set afterwards (another set is on screen, and
    this button offers the quick set instead)."""
    if session.quick_set.get():
        quick_progress()
        return
    if session.quick_set_error.get():
        st.warning(session.quick_set_error.pop(), icon=":material/error:")
    if not missing:  # the quick set is complete already: just offer to show it
        if switch_to:
            st.button("Show the complete narrow conv AE set", key="cb_to_quick", icon=":material/swap_horiz:",
                      on_click=show_group, args=(switch_to,))
        return
    each = float(np.mean([_estimate_seconds(m) for m in missing]))
    what = what or (f"Train the missing {len(missing)} here" if switch_to is None
                    else f"Or train a complete set of {len(missing)} here")
    cfg = _quick_config()
    clicked = st.button(f"{what} (about {fmt_seconds(each)} each)", type="primary", icon=":material/play_arrow:",
                        key="cb_train_here",
                        help=f"The narrow conv AE (z = 8) on the bundled digits, {cfg.epochs} epochs with batch size "
                             f"{cfg.batch_size}, seed 0: one model per upsampling, one after another in the "
                             "background. You can cancel; models already trained are kept.")
    if not clicked:
        return
    from ui import training

    if training.is_running():
        st.warning("A training run from the Train page is still going: wait for it or stop it first.")
        return
    session.quick_set.set({"todo": list(missing), "done": [], "run": None, "switch_to": switch_to, "error": None})
    quick_progress()


def _start_next(state: dict) -> str | None:
    """Start the next model of the set in a worker; returns a message if it cannot start."""
    from ui.training import RunInfo

    data = dataset(QUICK_DATASET)
    if data is None:
        return "the bundled dataset could not be loaded"
    mode = state["todo"][0]
    preset, cfg = get_preset(QUICK_PRESET), _quick_config()
    model = build_seeded(preset.spec(data.shape, None, mode), cfg.seed)
    registry = run_registry()
    job = TrainingJob(model, data.train_x, data.test_x, cfg, threads=registry.threads_for_new_run())
    run = RunInfo(job, QUICK_PRESET, QUICK_DATASET, cfg)
    if not registry.reserve(run):
        return f"the server is busy ({config.MAX_CONCURRENT_JOBS} training runs going); try again in a minute"
    job.start()
    state["run"] = run
    return None


@st.fragment(run_every=1.0)
def quick_progress() -> None:
    """Progress of the set being trained here; advances it one model at a time."""
    state = session.quick_set.get()
    if not state:
        return
    run = state["run"]
    if run is not None:
        run_registry().heartbeat(run.run_id)
        snap = run.job.snapshot()
        if snap.finished:
            if snap.status == "done":
                add_session_model(Checkpoint(run.job.model, QUICK_PRESET, QUICK_DATASET, run.config, snap.history,
                                             {}, {"source": "checkerboard lab", "status": snap.status,
                                                  "train_seconds": round(snap.elapsed_s, 1)},
                                             timelapse=run.job.timelapse()))
                state["done"].append(state["todo"].pop(0))
            elif not state.get("cancelled"):  # a cancelled model is half-trained: not part of the set
                state["error"] = snap.error or "training stopped"
            state["run"] = run = None
    if state["error"] is None and state["todo"] and run is None and not state.get("cancelled"):
        state["error"] = _start_next(state)
        run = state["run"]
    if state["error"] or not state["todo"] or (state.get("cancelled") and run is None):
        session.quick_set.set(None)
        if state["error"]:
            session.quick_set_error.set(f"Training stopped: {state['error']}.")
        elif state["switch_to"] and not state["todo"]:
            show_group(state["switch_to"])
        st.rerun()  # the whole page: the new models join the comparison
    total = len(state["done"]) + len(state["todo"])
    snap = run.job.snapshot()
    mode = state["todo"][0]
    st.progress((len(state["done"]) + snap.progress) / total,
                text=f"{len(state['done']) + 1}/{total} {mode}: step {snap.step}/{snap.total_steps}"
                     f"{' · stopping…' if snap.status == 'stopping' else ''}")
    if st.button("Cancel", key="cb_quick_cancel", icon=":material/stop:",
                 help="Stops after the current step; the models finished so far are kept."):
        state["cancelled"] = True
        run.request_stop()


def progress_elsewhere(where, shown_section: int | None, own_section: int = 4) -> None:
    """The set's progress in `where` while another Lab section is open: its polls advance the set one model at a
    time and keep the runs' heartbeat, so the set trains on whichever section the visitor reads."""
    if session.quick_set.get() and shown_section != own_section:
        with where:
            st.caption(f"Training the narrow conv AE set in the background (see section {own_section}):")
            quick_progress()
