"""Section 4 of the Checkerboard Lab: trained decoders that differ only in their upsampling layers, compared on
the same test images (reconstructions, close-ups, differences, power spectra, artifact scores and PSNR). Training
a missing set right here is in ui.checkerboard.quick_train.
"""
from __future__ import annotations

import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from aecore.artifacts import artifact_score, artifact_spectrum, spectrum_for_display
from aecore.catalog import MODELS
from aecore.checkerboard import center_of_mass_crop
from aecore.distill import UpsampleGroup, group_by_upsampling
from aecore.metrics import psnr_per_image, reconstruct_batched
from aecore.models import UPSAMPLE_HELP, UPSAMPLE_MODES
from aecore.viz import room, to_uint8_image
from ui.checkerboard.figures import (_colorbar, _heat, _hide_inner_y, _image_axes, _panels_width, _score_help,
                                     spectra_figure)
from ui.checkerboard.quick_train import QUICK_DATASET, _offer_quick_set, _offer_training, _quick_recipe
from ui import session
from ui.state import all_models, dataset, shipped_models
from ui.widgets import UrlField, image_rows, seed_widgets, set_url, widgets_to_url

N_TEST, N_SCORE, CROP = 8, 100, 14


def _group_label(group: UpsampleGroup) -> str:
    preset = MODELS.get(group.model_name)
    title = preset.title if preset else group.model_name
    cfg = group.config
    extra = "".join([f", batch {cfg['batch_size']}" if cfg["batch_size"] != 100 else "",
                     f", lr {cfg['lr']:g}" if cfg["lr"] != 1e-3 else "",
                     f", {cfg['max_steps']} steps at most" if cfg["max_steps"] else ""])
    return (f"{title} z={group.spec['latent_dim']} · {group.dataset} · {cfg['epochs']} epoch(s){extra}, seed "
            f"{cfg['seed']} — {len(group.members)} of {len(UPSAMPLE_MODES)} upsamplings")


def _short_id(group_id: str) -> str:
    """A set's name in the URL: 8 hex digits of a hash of its recipe (the recipe itself is a long tuple)."""
    return hashlib.sha1(group_id.encode()).hexdigest()[:8]


@st.fragment
def trained_decoders() -> None:
    st.markdown("Random weights are the starting point; training can learn to hide the pattern, or not. Here "
                "are decoders that are **identical except for the upsampling layers** (same architecture "
                "otherwise, same data, same seed, same training), reconstructing the same test images. Where "
                "the upsampling sits matters: the conv AE's decoder *ends* in an upsampling layer, while the "
                "lecture's conv VAE follows its last one with a 4x4 convolution that smooths over the pattern.")
    entries = all_models()
    data_shape = (1, 28, 28)
    quick = _quick_recipe(data_shape)
    groups = group_by_upsampling((k, e.checkpoint) for k, e in entries.items())
    if not any(g.recipe == quick for g in groups):
        groups.append(UpsampleGroup(quick, {}))
    # the fullest set first; among equals the conv AE (its decoder ends in the upsampling layer, so the pattern
    # shows most), then the lecture's conv VAE, on the bundled digits, then the set this page can train
    rank = {"conv_ae_narrow": 0, "conv_ae": 1, "conv_vae": 2}
    groups.sort(key=lambda g: (-len(g.members), rank.get(g.model_name, 2), g.dataset != QUICK_DATASET,
                               g.recipe != quick))
    ids = [repr(g.recipe) for g in groups]
    by_id = dict(zip(ids, groups))
    wanted = session.compared_group.get()
    if wanted is None and "cbset" in st.query_params:  # a link, on this session's first visit to the section
        wanted = next((i for i in ids if _short_id(i) == st.query_params["cbset"]), None)
        if wanted is None:
            st.warning("The link names a set of models that is not on this server (trained in another visitor's "
                       "session, or by another release): showing the fullest set here instead.",
                       icon=":material/link_off:")
    group_id = st.selectbox("Models compared", ids, index=ids.index(wanted) if wanted in ids else 0,
                            key=session.group_picker.key, format_func=lambda i: _group_label(by_id[i]),
                            help="Models in one set share everything but the decoder's upsampling.")
    session.compared_group.set(group_id)
    set_url(cbset=_short_id(group_id))
    group = by_id[group_id]
    missing = group.missing(UPSAMPLE_MODES)
    quick_missing = next(g for g in groups if g.recipe == quick).missing(UPSAMPLE_MODES)
    if missing:
        _offer_training(group, missing, quick, quick_missing)
    elif group.recipe != quick:
        _offer_quick_set(quick, quick_missing)
    if len(group.members) == 0:
        return
    _compare(group, entries)


@st.cache_data(show_spinner=False, max_entries=64)
def _shipped_reconstruction(key: str, x: np.ndarray) -> np.ndarray:
    """A shipped model's reconstructions, shared by every visitor: the shipped models are the same for all."""
    return reconstruct_batched(shipped_models()[key].model, torch.from_numpy(x))[1].numpy()


def warm_shipped_sets() -> None:
    """For the server's warm-up (ui.state.warm_up): each shipped set's reconstructions of the images section 4 opens
    on, into the shared cache, so its first opening does not compute them (1.5 s on 2 cores, 2026-12-03)."""
    for group in group_by_upsampling((k, e.checkpoint) for k, e in shipped_models().items()):
        data = dataset(group.dataset) if len(group.members) > 1 else None
        if data is not None:
            for key in group.members.values():
                _shipped_reconstruction(key, data.test_x[:N_SCORE].numpy())  # first = 0: as _compare slices


def _reconstruct(entry, x: torch.Tensor) -> torch.Tensor:
    """Reconstructions of x: a shipped model's from the shared cache, else memoised per visitor (models in
    session_state are not hashable for st.cache_*)."""
    if entry.source == "shipped":
        return torch.from_numpy(_shipped_reconstruction(entry.key, x.numpy()))
    memo = session.recon_memo.get()
    key = (entry.key, id(entry.checkpoint.model), x.shape[0], float(x.sum()))
    if key not in memo:
        if len(memo) > 20:
            memo.clear()
        memo[key] = reconstruct_batched(entry.model, x)[1]
    return memo[key]


def _compare(group: UpsampleGroup, entries: dict) -> None:
    data = dataset(group.dataset)
    if data is None:
        return
    modes = [m for m in UPSAMPLE_MODES if m in group.members]
    a, b, c, d = st.columns([1.3, 1.3, 1.6, 2], vertical_alignment="bottom")
    fields = {"cb_first": UrlField("cbfirst", 0, int, bounds=(0, len(data.test_x) - N_TEST)),
              "cb_pick": UrlField("cbpick", 1, int, bounds=(1, N_TEST)),
              "cb_crop_at": UrlField("cbcrop", "digit", choices=("digit", "corner")),
              "cb_spec_of": UrlField("cbspec", "output", choices=("output", "difference"))}
    seed_widgets(fields)
    first = int(a.number_input("First test image", 0, len(data.test_x) - N_TEST, step=N_TEST, key="cb_first"))
    pick = b.slider("Close-up of image", 1, N_TEST, key="cb_pick")
    where = c.radio("Close-up of", ["digit", "corner"], horizontal=True, key="cb_crop_at",
                    format_func={"digit": "the digit", "corner": "a corner"}.get,
                    help="The digit's centre, or the top-left corner, where the background shows any pattern.")
    source = d.radio("Spectrum of", ["output", "difference"], horizontal=True, key="cb_spec_of",
                     format_func={"output": "the outputs", "difference": "output − original"}.get)
    widgets_to_url(fields)
    start = max(0, min(first, len(data.test_x) - N_SCORE))  # the scored images hold the shown ones: one pass per model
    x_all, x = data.test_x[start: start + N_SCORE], data.test_x[first: first + N_TEST]
    outs = {m: _reconstruct(entries[group.members[m]], x_all) for m in modes}
    shown = {m: outs[m][first - start: first - start + N_TEST] for m in modes}

    st.markdown(f"**Test images {first}–{first + N_TEST - 1} and their reconstructions**")
    image_rows({"original": x, **{m: shown[m] for m in modes}}, target=56)

    i = pick - 1
    top, left = center_of_mass_crop(x[i, 0].numpy(), CROP) if where == "digit" else (0, 0)
    st.markdown(f"**Close-up of image {first + i}**, rows {top}–{top + CROP - 1}, columns {left}–{left + CROP - 1}, "
                "nearest-neighbour enlarged")
    panels = {"original": x[i:i + 1], **{m: shown[m][i:i + 1] for m in modes}}
    scale = max(4, min(12, 124 // CROP))
    for col, (name, img) in zip(st.columns(1 + len(UPSAMPLE_MODES)), panels.items()):
        crop = img[..., top:top + CROP, left:left + CROP]
        col.image(to_uint8_image(crop, nrow=1, scale=scale, padding=0), caption=name)

    diffs = {m: (shown[m][i, 0] - x[i, 0]).numpy() for m in modes}
    st.plotly_chart(difference_figure(diffs, first + i), key="cb_diff", width=_panels_width(len(diffs)))
    spectra, rows = {}, []
    for m in modes:
        imgs = outs[m] if source == "output" else outs[m] - x_all
        spectra[m] = spectrum_for_display(artifact_spectrum(imgs))
        rows.append({"upsampling": m, "how": UPSAMPLE_HELP[m],
                     "artifact score": round(artifact_score(outs[m], periods=(2,)), 2),
                     "score of output − original": round(artifact_score(outs[m] - x_all, periods=(2,)), 2),
                     "PSNR (dB)": round(float(psnr_per_image(outs[m], x_all).mean()), 2)})
    what = "outputs" if source == "output" else "differences (output − original)"
    st.plotly_chart(spectra_figure(spectra, f"Mean power spectrum of the {what}, {len(x_all)} test images"),
                    key="cb_trained_spectra", width=_panels_width(len(spectra)))
    columns = _score_help("ln(power at the period-2 frequencies, ±0.5 cycles/pixel / power of the bins around them); "
                          "0 = none")
    columns["score of output − original"] = st.column_config.NumberColumn(format="%.2f")
    st.dataframe(rows, hide_index=True, column_config=columns)
    st.caption(f"Scores and PSNR over {len(x_all)} test images. Here the score looks for period 2 only: these "
               "decoders end in one stride-2 layer, and on 28x28 images the period-4 bins (±0.25 cycles/pixel) "
               "sit where the digits' own strokes have most of their energy. The difference image shows "
               "where the pattern lives: in the background and along the strokes.")


def difference_figure(diffs: dict, index: int) -> go.Figure:
    """output − original per model, diverging colours centred on 0, one scale, axes matched."""
    n = len(diffs)
    fig = make_subplots(1, n, horizontal_spacing=0.03, subplot_titles=list(diffs))
    lim = max(max(float(np.abs(d).max()) for d in diffs.values()), 1e-6)
    for i, d in enumerate(diffs.values(), 1):
        fig.add_trace(_heat(d, hover="col %{x}, row %{y}: %{z:+.3f}"), 1, i)
    _image_axes(fig, n, x_title="x (pixel)", y_title="y (pixel)", match=True)
    _hide_inner_y(fig, n)
    fig.update_layout(title=f"Output − original, test image {index}",
                      coloraxis=dict(colorscale="RdBu_r", cmin=-lim, cmax=lim,
                                     colorbar=_colorbar("output − original<br>(red: too bright)")),
                      height=300 if n > 2 else 360, margin=room(t=80, l=75, r=155, b=10))
    return fig
