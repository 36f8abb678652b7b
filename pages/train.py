"""Train: pick a model and data, press Start, watch it learn."""
import streamlit as st

from aecore.catalog import MODELS
from aecore.losses import REDUCTIONS
from aecore.data import DATASETS, dataset_status
from aecore.models import UPSAMPLE_HELP, UPSAMPLE_MODES
from aecore.noise import NOISE_KINDS, Noise
from aecore.viz import loss_curves
from ui import config, glossary, training
from ui.widgets import fmt_seconds, image_rows, require_app_frame, set_url, settings_reader, url_noise, url_value
from ui.state import all_models, dataset
from ui.timelapse import timelapse

require_app_frame()
st.title("Train an autoencoder")
st.caption("Choose a model and a dataset, press **Start**, and watch the loss fall and the reconstructions "
           "sharpen. Training runs in the background: you can switch pages and come back.")

running = training.is_running()
EPOCH_CHOICES = (1, 2, 3, 5, 8, 10, 12, 15, 20, 30, 50, 100, 150, 200)
BATCH_CHOICES = (16, 32, 64, 100, 128, 256, 512)
LR_CHOICES = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2)


def settings_form():
    """The controls; returns the chosen (preset, dataset, latent size, upsampling, config arguments)."""
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Model and data**")
        names = list(MODELS)
        preset_name = st.selectbox("Model", names, index=names.index(url_value("preset", "conv_vae", names)),
                                   format_func=lambda n: MODELS[n].title, key="train_preset")  # keyed: the URL
        # follows the choice a run later, and an unkeyed box whose index changed would be a new, reset widget
        preset = MODELS[preset_name]
        recipe = training.default_recipe(preset_name)
        # A link's settings belong to the model it names: on switching models, the new model's defaults apply
        # (its widgets are keyed by model, so each model also keeps what the visitor set for it).
        linked = url_value("preset", "conv_vae", names) == preset_name
        link = settings_reader(linked)
        st.caption(preset.description)
        datasets = list(DATASETS)
        dataset_name = st.selectbox(
            "Dataset", datasets, index=datasets.index(url_value("dataset", "mnist-5k", datasets)),
            format_func=lambda d: f"{DATASETS[d].title} · {dataset_status(d)}")
        latent_dim = st.number_input("Latent size (z)", 1, 256,
                                     link("latent", preset.latent_dim, cast=int, bounds=(1, 256)),
                                     key=f"latent_{preset_name}",
                                     help="How many numbers the encoder squeezes each image into. 2 can be drawn "
                                          "as a map (Latent Space); more keeps more detail.")
        upsample = "transposed"
        if preset.family.startswith("conv"):
            upsample = st.selectbox("Decoder upsampling", UPSAMPLE_MODES, format_func=glossary.UPSAMPLE_LABELS.get,
                                    index=UPSAMPLE_MODES.index(link("upsample", "transposed", UPSAMPLE_MODES)),
                                    key=f"upsample_{preset_name}",
                                    help="How the decoder enlarges its maps: "
                                         + "; ".join(UPSAMPLE_HELP[m] for m in UPSAMPLE_MODES)
                                         + ". Compare them in the Checkerboard Lab.")
    with c2:
        st.markdown("**Optimisation**")
        epoch_choices = sorted({e for e in EPOCH_CHOICES if e <= config.MAX_EPOCHS} | {recipe["epochs"]})
        epochs = st.select_slider("Epochs", epoch_choices,
                                  link("epochs", min(recipe["epochs"], config.MAX_EPOCHS), epoch_choices, int),
                                  key=f"epochs_{preset_name}",
                                  help="How many times the model sees every training image.")
        batch_size = st.select_slider("Batch size", BATCH_CHOICES,
                                      link("batch", recipe["batch_size"], BATCH_CHOICES, int),
                                      key=f"batch_{preset_name}",
                                      help="How many images the model looks at before each small update of its "
                                           "weights. Smaller: more updates per epoch, each noisier.")
        lr = st.select_slider("Learning rate", LR_CHOICES, link("lr", recipe["lr"], LR_CHOICES, float),
                              format_func=lambda v: f"{v:g}", key=f"lr_{preset_name}",
                              help="How big each update of the weights is. Too large and the loss jumps around "
                                   "or becomes NaN; too small and learning crawls.")
        cosine = st.toggle("Cosine learning-rate decay",
                           link("sched", recipe["lr_schedule"], ("cosine", "constant")) == "cosine",
                           key=f"cosine_{preset_name}",
                           help="Lower the learning rate smoothly to 0 by the last step: usually a few nats better "
                                "for VAEs trained for many epochs. The shipped models use it.")
        seed = st.number_input("Seed", 0, 2**31 - 1, url_value("seed", 0, cast=int, bounds=(0, 2**31 - 1)),
                               help="Fixes the random starting weights and the order of the images: the same seed "
                                    "and settings give the same model.")
        keep_best = st.toggle("Keep the best epoch", link("best", "0") == "1", key=f"best_{preset_name}",
                              help="Hold back 10 % of the training images as a validation set and end with the "
                                   "weights of the epoch that did best on them (the test images never choose).")
    with c3:
        st.markdown("**Objective**")
        defaults = preset.config()
        beta = st.number_input("beta (KL weight)", 0.0, 50.0,
                               link("beta", defaults.beta, cast=float, bounds=(0.0, 50.0)), 0.5,
                               key=f"beta_{preset_name}",
                               disabled=not preset.variational,
                               help="1 is the plain VAE bound; above 1 is a beta-VAE.")
        sparsity = st.number_input("Sparsity (L1 weight on the code)", 0.0, 10.0,
                                   link("sparsity", defaults.sparsity, cast=float, bounds=(0.0, 10.0)), 0.01,
                                   key=f"sparsity_{preset_name}", format="%.3f")
        as_written = st.toggle("Loss as written in the lecture", link("loss", "per_image", REDUCTIONS) == "as_written",
                               key=f"as_written_{preset_name}", disabled=not preset.variational,
                               help="The first lecture's code: nn.BCELoss() averages over pixels and batch, but the KL "
                                    "is summed over the batch, so the KL weighs 784 x batch times more than in the "
                                    "-ELBO. Train once each way and compare the KL per dimension and the samples.")
        noise0 = url_noise("noise", defaults.noise, max_level=1.0) if linked else Noise.parse(defaults.noise)
        kinds = list(NOISE_KINDS)
        noise_kind = st.selectbox("Input noise (denoising)", kinds, key=f"noise_{preset_name}",
                                  index=kinds.index(noise0.kind),
                                  format_func=glossary.NOISE_LABELS.get,
                                  help="Train on corrupted inputs, scored against the clean images: a denoising AE. "
                                       + glossary.NOISE_EXPLAINED)
        noise_level = st.slider("Noise level", 0.0, 1.0, float(noise0.level or 0.5), 0.05,
                                key=f"noise_level_{preset_name}", disabled=noise_kind == "none")
    noise = "none" if noise_kind == "none" else f"{noise_kind}:{noise_level:g}"
    set_url(preset=preset_name, dataset=dataset_name, latent=latent_dim, epochs=epochs, batch=batch_size, lr=f"{lr:g}",
            sched="cosine" if cosine else "constant", noise=noise, seed=seed,
            beta=f"{beta:g}" if preset.variational else None, sparsity=f"{sparsity:g}" if sparsity else None,
            loss="as_written" if as_written and preset.variational else None,
            upsample=upsample if preset.family.startswith("conv") else None, best=1 if keep_best else None)
    return preset_name, dataset_name, int(latent_dim), upsample, keep_best, dict(
        epochs=epochs, batch_size=batch_size, lr=lr, lr_schedule="cosine" if cosine else "constant", beta=beta,
        sparsity=sparsity, noise=noise, seed=int(seed),
        reduction="as_written" if as_written and preset.variational else "per_image")


if running:
    run = training.current_run()
    cfg = run.config
    st.info(f"**Training {MODELS[run.preset].title}** (z={run.job.model.spec.latent_dim}) on **{run.dataset}**: "
            f"{cfg.epochs} epochs, batch {cfg.batch_size}, learning rate {cfg.lr:g}"
            f"{f', beta {cfg.beta:g}' if run.job.model.variational else ''}"
            f"{f', sparsity {cfg.sparsity:g}' if cfg.sparsity else ''}, noise {cfg.noise}, seed {cfg.seed}"
            f"{', the loss as written in the lecture' if cfg.reduction == 'as_written' else ''}.",
            icon=":material/model_training:")
    if run.stop_requested is None:
        st.button("Stop", icon=":material/stop:", on_click=run.request_stop,
                  help="Ends the run after the current step; the model keeps what it has learned so far.")
    else:
        st.button("Stopping…", icon=":material/hourglass_top:", disabled=True)
else:
    preset_name, dataset_name, latent_dim, upsample, keep_best, args = settings_form()
    if st.button("Start", type="primary", icon=":material/play_arrow:"):
        try:
            cfg = MODELS[preset_name].config(**args)
        except ValueError as e:
            st.error(f"Check the settings: {e}")
        else:
            problem = training.start(preset_name, dataset_name, latent_dim, upsample, cfg, keep_best)
            if problem:
                st.warning(problem)
            else:
                st.rerun()


@st.fragment(run_every=config.LIVE_REFRESH_S if running else None)
def live_view():
    run = training.current_run()
    if run is None:
        st.info("No run yet. The defaults train the lecture's conv VAE on 4,000 bundled MNIST digits to the quality "
                "of a textbook's 20 epochs in 12: 20-40 seconds on 2 cores of a recent CPU.")
        return
    snap = run.job.snapshot()
    if snap.status == "starting":
        st.progress(0.0, text="Starting the training process…")
    else:
        state = " · stopping after this step…" if snap.status == "stopping" else ""
        st.progress(snap.progress, text=f"Epoch {max(snap.epoch, 1)}/{snap.epochs} · step {snap.step}/"
                    f"{snap.total_steps} · {snap.samples_per_s:,.0f} images/s · ETA {fmt_seconds(snap.eta_s)}{state}")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Train loss (last step)", f"{snap.last.get('loss', float('nan')):.2f}",
              help="The objective on the last batch, per image (nats for VAEs: -ELBO). Lower is better; it jumps "
                   "around from batch to batch.")
    tests = snap.history.test.get("loss", [])
    m2.metric("Test loss (last epoch)", f"{tests[-1]:.2f}" if tests else "–",
              delta=f"{tests[-1] - tests[-2]:.2f}" if len(tests) > 1 else None, delta_color="inverse",
              help="The same objective on test images the model never trains on, after each epoch: the honest "
                   "curve. The small number is the change since the epoch before.")
    m3.metric("Elapsed", fmt_seconds(snap.elapsed_s))
    m4.metric("Status", snap.status, help=f"Training runs in its own process with {run.job.threads} CPU thread(s).")
    left, right = st.columns([3, 2])
    left.plotly_chart(loss_curves(snap.history, f"{MODELS[run.preset].title} on {run.dataset}"),
                      key="loss_chart")
    with right:
        st.markdown("**Reconstructions of test images** (refreshed each epoch)")
        if snap.preview is None:
            st.caption("They appear after the first epoch.")
        else:
            image_rows({"input": run.job.preview_input, "output": snap.preview}, target=56)
    if snap.finished and not run.finalized:
        st.rerun()  # the whole page: the result section and the model picker need the new model


run = training.current_run()
if run is not None:
    training.finish(run)  # before the live view, which reruns the page until the result is in
live_view()

@st.fragment(run_every=1.0 if run is not None and run.finalized and not run.metrics else None)
def test_metrics(run) -> None:
    """The final model's test metrics, computed by the training process after it handed over the weights."""
    if not run.metrics:
        if training.update_metrics(run):
            st.rerun()  # the whole page once: the download now carries the metrics, and this poll stops
        st.caption("Computing the test metrics (a few seconds)…")
        return
    if "error" in run.metrics:
        st.warning(f"The test metrics could not be computed: {run.metrics['error']}")
        return
    rows = glossary.metric_rows(run.metrics)
    st.dataframe(rows, hide_index=True, height=min(420, 36 * len(rows) + 38), column_config={
        "what it means": st.column_config.TextColumn(width="large")})


if run is not None and run.finalized:
    snap = run.job.snapshot()
    if snap.status == "error":
        st.error(f"Training stopped: {snap.error}", icon=":material/error:")
    elif snap.status == "stopped" and run.stop_reason and run.stop_reason != "you pressed Stop":
        st.warning(f"Training was stopped: {snap.error or run.stop_reason}.", icon=":material/pause_circle:")
    if snap.step == 0 and snap.status != "error":
        st.info("The run was stopped before its first step, so there is no model to keep. Press **Start** to "
                "train again.", icon=":material/info:")
    if run.entry_key:
        kept = (f" It keeps the weights of epoch {snap.selected_epoch}, the best on the validation images."
                if snap.selected_epoch else "")
        st.success(f"Model ready ({snap.status} after {snap.step} steps).{kept} It is now in the model picker of "
                   "the other pages.", icon=":material/check_circle:")
        test_metrics(run)
        d1, d2, d3 = st.columns(3)
        d1.download_button("Download checkpoint", run.file_bytes, f"{run.preset}_{run.dataset}.pt",
                           icon=":material/download:", width="stretch")
        d2.page_link("pages/reconstruct.py", label="Reconstruct & denoise with it", icon=":material/auto_fix_high:")
        d3.page_link("pages/latent.py", label="Explore its latent space", icon=":material/scatter_plot:")
        entry = all_models().get(run.entry_key)
        if entry is not None and entry.checkpoint.timelapse is not None:
            with st.expander("How it learned: the run's time-lapse", icon=":material/movie:"):
                timelapse(entry, dataset(run.dataset), key="train_tl")
        if not config.SHARED:
            with st.form("save_local"):
                name = st.text_input("Save under checkpoints/ as",
                                     f"{run.preset}_{run.dataset}_z{run.job.model.spec.latent_dim}")
                if st.form_submit_button("Save"):
                    st.info(training.save_locally(run, name))
