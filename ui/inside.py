"""The sections of "Inside the models" (pages/inside.py), each a fragment: a control reruns only its own section.
The computations are in aecore.anatomy; results for shipped models are cached per process."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
import streamlit as st
import torch

from aecore import anatomy as an
from aecore.metrics import encode_all, kl_per_latent
from aecore.noise import Noise, corrupt
from aecore.viz import room
from ui.state import ModelEntry, dataset, shipped_models
from ui.text import plain
from ui.widgets import image_grid, image_rows, set_url, url_value

MAX_ROWS = 10  # traversal rows: the dimensions with the most KL first


@st.fragment
def layers(entry: ModelEntry) -> None:
    rows = an.layer_table(entry.model)
    total = sum(r.params for r in rows)
    st.markdown(f"Every layer of **{plain(entry.label)}** on the way from image to code and back, for one image "
                f"(the lecture writes the same shapes with the batch in front, e.g. `[batch, 256, 7, 7]`). "
                f"{total:,} trainable weights in all.")
    st.dataframe([{"part": r.part, "layer": r.kind, "output shape": "[N, " + ", ".join(map(str, r.output)) + "]",
                   "weights": f"{r.params:,}" if r.params else ""} for r in rows], hide_index=True,
                 height=min(36 * len(rows) + 38, 600), column_config={
                     "output shape": st.column_config.TextColumn(help="N: the images in a batch; then channels, "
                                                                 "height, width (or just the length of a vector)."),
                     "weights": st.column_config.TextColumn(help="Trainable numbers in this layer.")})


@st.fragment
def traversal(entry: ModelEntry, data) -> None:
    model = entry.model
    if not model.variational:
        st.info("A plain autoencoder's code has no prior to sweep over: its dimensions have no common scale. Pick a "
                "VAE (for instance the β-VAE, whose dimensions tend to mean one thing each).", icon=":material/info:")
        return
    st.markdown("Fix every dimension of one test digit's code but one, and sweep that one across the prior "
                "(5 % to 95 % of its probability). A dimension the model uses changes the digit; a dimension with "
                "KL ≈ 0 changes nothing: the model ignores it.")
    last = len(data.test_x) - 1
    c1, c2 = st.columns([1, 3])
    index = c1.number_input("Start from test digit", 0, last, url_value("tdigit", 0, cast=int, bounds=(0, last)),
                            key="in_tdigit")
    set_url(tdigit=index)
    kl = _kl(entry, data)
    dims = [int(d) for d in np.argsort(-kl)[:MAX_ROWS]]
    z0 = encode_all(model, data.test_x[int(index) : int(index) + 1])[0]
    images, values = an.traversals(model, z0, dims)
    steps = len(values)
    c2.caption(f"Values swept: {', '.join(f'{v:.2f}' for v in values)}. Rows: the {len(dims)} dimensions with the "
               "most KL (nats per image: how much the code says in that dimension).")
    image_rows({f"dim {d} · KL {kl[d]:.2f}": images[i * steps : (i + 1) * steps] for i, d in enumerate(dims)},
               target=44)


ELLIPSES = 300  # test images drawn: enough to see the clouds overlap, few enough to see each one
PALETTE = qualitative.D3  # one colour per digit class (the ten D3 colours)


@st.fragment
def clouds(entry: ModelEntry, data) -> None:
    model = entry.model
    if model.spec.latent_dim != 2:
        st.info("This needs a 2-number code. Pick the conv VAE z=2 for clouds, and compare with a plain AE with a "
                "2-number code, which you can train in seconds:", icon=":material/info:")
        st.page_link("pages/train.py", label="Train an MLP AE with z = 2 (5 epochs)", icon=":material/model_training:",
                     query_params={"preset": "mlp_ae", "latent": "2", "epochs": "5"})
        return
    means, sigmas = an.code_clouds(model, data.test_x[:ELLIPSES])
    labels = data.test_y[:ELLIPSES].numpy() if data.test_y is not None else np.zeros(ELLIPSES, dtype=int)
    fig = go.Figure()
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        colour, name = PALETTE[int(c) % 10], data.classes[c] if data.classes else str(c)
        if sigmas is not None:
            x, y = an.ellipse_paths(means[idx], sigmas[idx])
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=colour, width=1), opacity=0.5,
                                     name=f"{name}: mean ± σ", legendgroup=name, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=means[idx, 0].numpy(), y=means[idx, 1].numpy(), mode="markers",
                                 marker=dict(color=colour, size=4),
                                 name=name, legendgroup=name, showlegend=sigmas is None,
                                 hovertemplate=f"digit {name}: (%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
    kind = "a Gaussian cloud: its mean and one standard deviation" if sigmas is not None else "a single point"
    fig.update_layout(title=f"Each of {ELLIPSES} test digits as {kind}", xaxis_title="z₁ (code unit)",
                      yaxis_title="z₂ (code unit)", height=480, margin=dict(t=60, b=10, l=10, r=10),
                      yaxis=dict(scaleanchor="x"))
    st.plotly_chart(fig, key="in_clouds")
    if sigmas is not None:
        st.caption(f"A VAE gives each image a distribution, not a vector: median σ {sigmas.median():.2f} code "
                   "units. Codes sampled from one cloud decode to similar images, so the space between training "
                   "codes means something, which is what lets random codes from the prior decode to digits.")
    else:
        st.caption("A plain AE gives each image one fixed point. Nothing asks the space between the points to "
                   "decode to anything: compare with the conv VAE z=2's clouds.")


@st.cache_resource(show_spinner=False, max_entries=16)
def _shipped_kl(key: str) -> np.ndarray:
    entry = shipped_models()[key]
    return kl_per_latent(entry.model, dataset(entry.checkpoint.dataset).test_x).numpy()


def _kl(entry: ModelEntry, data) -> np.ndarray:
    """KL per latent dimension on the test digits: once per process for shipped models, on 500 digits otherwise."""
    if entry.source == "shipped":
        return _shipped_kl(entry.key)
    return kl_per_latent(entry.model, data.test_x[:500]).numpy()


@st.fragment
def filters(entry: ModelEntry, data) -> None:
    conv = an.first_conv(entry.model)
    if conv is None:
        st.info("This model has no convolution: its first layer sees the image as one long vector. Pick a conv "
                "model to see its filters.", icon=":material/info:")
    else:
        st.markdown("The first convolution's **filters** (each a small stamp the layer slides over the image; white "
                    "weights add, black subtract) and the **feature maps** they make from one test digit.")
        w = conv.weight.detach()[:, :1]
        shown = (w - w.amin((1, 2, 3), keepdim=True)) / (w.amax((1, 2, 3), keepdim=True)
                                                         - w.amin((1, 2, 3), keepdim=True)).clamp_min(1e-8)
        a, b = st.columns(2)
        image_grid(shown, nrow=8, target=48, caption=f"{len(w)} filters, {w.shape[-2]}x{w.shape[-1]}", where=a)
        with torch.no_grad():
            maps = torch.relu(conv(data.test_x[:1]))[0][:, None]
        maps = maps / maps.amax((1, 2, 3), keepdim=True).clamp_min(1e-8)
        image_grid(maps, nrow=8, target=48, caption="Feature maps of the first test digit (after ReLU)", where=b)
    st.markdown("**Does training on noise make filters sharper?** The source says denoising autoencoders learn "
                "sharper, more edge-like filters. Measured on the shipped conv AE and denoising AE (same "
                "architecture, same data; one trained on clean images, one on Gaussian noise σ = 0.5):")
    shares = _filter_shares()
    if shares:
        st.dataframe([{"model": name, "high-frequency share": f"{v.mean():.3f} ± {v.std():.3f}", "filters": len(v)}
                      for name, v in shares.items()], hide_index=True, column_config={
            "high-frequency share": st.column_config.TextColumn(
                help="Share of a filter's spectral energy above a quarter cycle per pixel (half the highest frequency "
                     "a pixel grid holds), averaged over the first layer's filters: higher is sharper.")})
        clean, noisy = (v.mean().item() for v in shares.values())
        st.caption(f"On these two models the denoising AE's first-layer filters are "
                   f"{'sharper' if noisy > clean else 'not sharper: slightly smoother'} ({noisy:.3f} against "
                   f"{clean:.3f}). The claim need not hold for every network; the table says what it is for these.")


@st.cache_resource(show_spinner=False)
def _filter_shares() -> dict[str, torch.Tensor]:
    """High-frequency share of each first-layer filter: the clean conv AE's, then the denoising AE's ({} if absent)."""
    models = shipped_models()
    pairs = (("shipped:conv_ae", "conv AE (clean images)"), ("shipped:denoising_ae", "denoising AE"))
    if any(key not in models for key, _ in pairs):
        return {}
    return {name: an.high_frequency_share(an.first_conv(models[key].model).weight) for key, name in pairs}


@st.cache_resource(show_spinner="Fitting PCA…")
def _pca() -> an.PcaComparison | None:
    entry, data = shipped_models().get("shipped:linear_ae"), dataset("mnist-5k")
    return None if entry is None or data is None else an.compare_with_pca(entry.model, data.train_x, data.test_x)


@st.fragment
def pca() -> None:
    result = _pca()
    if result is None:
        st.info("The shipped linear AE is not here: rebuild it with `python bench/build_checkpoints.py`.")
        return
    st.markdown(f"An autoencoder whose layers are linear can only learn a {result.k}-dimensional flat subspace, "
                f"the thing **PCA** finds best. The shipped linear AE (784 → {result.k} → 784) against PCA with "
                f"{result.k} components, on the same training digits, scored on the test digits:")
    a, b = st.columns(2)
    a.metric("PCA: test MSE per pixel", f"{result.pca_mse:.4f}", help="Lower is closer.")
    b.metric("Linear AE: test MSE per pixel", f"{result.ae_mse:.4f}", help="Lower is closer.")
    data = dataset("mnist-5k")
    image_rows({"test digit": data.test_x[: len(result.pca_reconstruction)], "PCA": result.pca_reconstruction,
                "linear AE": result.ae_reconstruction}, target=48)
    fig = go.Figure(go.Scatter(x=np.arange(1, len(result.angles_deg) + 1), y=result.angles_deg, mode="lines+markers",
                               hovertemplate="angle %{x}: %{y:.1f}°<extra></extra>"))
    fig.update_layout(title="Principal angles between the AE decoder's subspace and PCA's (0° = the same direction)",
                      xaxis_title="angle number (smallest first)", yaxis_title="angle (degrees)", height=340,
                      margin=room(t=60))
    st.plotly_chart(fig, key="in_angles")
    small = int((result.angles_deg < 30).sum())
    st.caption(f"Takeaway: {small} of {result.k} directions of the AE's subspace lie within 30° of PCA's (median "
               f"{np.median(result.angles_deg):.0f}°). Not identical: this 'linear' AE has a sigmoid on its output "
               "and was trained for a limited time, so it lands near PCA's subspace, not exactly on it"
               + (", and its sigmoid even lets it beat PCA's error." if result.ae_mse < result.pca_mse else "."))


COPY_MODELS, COPY_NOISE, COPY_SHOWN = ("linear_ae_digits_z16", "linear_ae_digits_z128"), "gaussian:0.3", 10


@st.fragment
def overcomplete() -> None:
    models = shipped_models()
    entries = [models.get(f"shipped:{name}") for name in COPY_MODELS]
    data = dataset("digits")
    if None in entries or data is None:
        st.info("The two shipped linear AEs on the 8x8 digits are not here: `python bench/build_checkpoints.py --only "
                + ",".join(COPY_MODELS) + "` builds them.", icon=":material/info:")
        return
    x = data.test_x
    noisy = corrupt(x, Noise.parse(COPY_NOISE), torch.Generator().manual_seed(0))
    tests = [an.copy_test(e.model, x, noisy) for e in entries]
    small, big = tests
    st.markdown(f"The other warning: an autoencoder whose code is **not smaller than its input** need not learn what "
                f"digits look like, since it can pass its input through. Two linear AEs on the 8x8 digits "
                f"({small.pixels} pixels), trained the same way: one squeezes each digit through {small.latent_dim} "
                f"numbers, the other has {big.latent_dim}, more numbers than pixels. Each gets the "
                f"{len(x)} test digits, clean and with Gaussian noise (σ = 0.3) added:")
    st.dataframe([{"code size": t.latent_dim, "clean digits: PSNR (dB)": round(t.clean_psnr, 1),
                   "noise let through (%)": round(100 * t.noise_passed), "noisy digits: PSNR (dB)":
                   round(t.denoised_psnr, 1), "the noisy input itself (dB)": round(t.noisy_psnr, 1)} for t in tests],
                 hide_index=True, column_config={
                     "clean digits: PSNR (dB)": st.column_config.NumberColumn(
                         help="How closely it reproduces a clean digit; higher is closer."),
                     "noise let through (%)": st.column_config.NumberColumn(
                         help="The share of the added noise's energy that reaches the output (0 % removes it all, "
                              "100 % copies it)."),
                     "noisy digits: PSNR (dB)": st.column_config.NumberColumn(
                         help="Its output for a noisy digit, compared with the clean digit; higher is cleaner.")})
    image_rows({"test digit": x[:COPY_SHOWN], "with noise": noisy[:COPY_SHOWN],
                **{f"code of {e.model.spec.latent_dim}": e.model.reconstruct(noisy[:COPY_SHOWN]).detach()
                   for e in entries}}, target=40)
    st.caption(f"Measured: the {big.latent_dim}-number code reproduces clean digits "
               f"{'more' if big.clean_psnr > small.clean_psnr else 'less'} closely ({big.clean_psnr:.1f} vs "
               f"{small.clean_psnr:.1f} dB) and lets {100 * big.noise_passed:.0f} % of the noise through against "
               f"{100 * small.noise_passed:.0f} %: closer to a copy, noise included. It does not copy outright: "
               "trained on digits alone, it never had to reproduce anything else. The cure is a bottleneck, or "
               "noisy inputs with clean targets (the denoising AE).")
