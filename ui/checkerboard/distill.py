"""Section 3 of the Checkerboard Lab: random decoders, the pattern before training. Distill's three random-init
decoders side by side, with their mean power spectra and artifact scores.
"""
from __future__ import annotations

import streamlit as st
import torch

from aecore.artifacts import artifact_score, artifact_spectrum, spectrum_for_display
from aecore.distill import DISTILL_CONFIGS, distill_outputs
from aecore.viz import to_uint8_image
from ui import session
from ui.checkerboard.figures import _score_help, spectra_figure
from ui.widgets import UrlField, flag, seed_widgets, set_url, url_value, widgets_to_url


DISTILL_TITLES = {"deconv_last_two": "Transposed conv in the last two layers",
                  "deconv_last": "Transposed conv in the last layer",
                  "resize_all": "Resize-convolution everywhere"}
DISTILL_SHORT = {"deconv_last_two": "2 transposed layers", "deconv_last": "1 transposed layer",
                 "resize_all": "resize-conv only"}
N_DISTILL = 8


@st.cache_data(show_spinner=False, max_entries=32)
def _distill(config_name: str, seed: int, latent: str, n: int = N_DISTILL):
    """Outputs (n, 1, 64, 64) as numpy, their mean spectrum for display and the artifact score."""
    out = distill_outputs(config_name, n=n, seed=seed, latent=latent, size=64)
    shown, fy, fx = spectrum_for_display(artifact_spectrum(out))
    return out.numpy(), shown, fy, fx, artifact_score(out)


DISTILL_FIELDS = {"cb_latent": UrlField("cblat", "random", choices=("random", "constant")),
                  "cb_stretch": UrlField("cbstretch", True, flag)}


@st.fragment
def random_decoders() -> None:
    st.markdown("Odena, Dumoulin & Olah (Distill 2016) show the pattern is there **before any training**: three "
                "decoders with random weights, 4x4 → 64x64 by four doublings, that differ only in where they "
                "use a transposed convolution (kernel 3, stride 2). Nothing has been learnt yet, so every "
                "regular pattern comes from the architecture.")
    a, b, c = st.columns([2.2, 1.4, 1], vertical_alignment="bottom")
    seed_widgets(DISTILL_FIELDS)
    latent = a.radio("Latent input", ["random", "constant"], horizontal=True, key="cb_latent",
                     format_func={"random": "random z ~ N(0, I)", "constant": "constant z = 1"}.get)
    stretch = b.toggle("Stretch contrast", key="cb_stretch",
                       help="Random decoders output values close to 0.5 (a flat grey); stretching each image to "
                            "the full black-white range makes the pattern visible. Scores use the raw outputs.")
    if c.button("Reseed", icon=":material/casino:", help="New random weights (and latents) for all three."):
        session.distill_seed.set(session.distill_seed.get() + 1)
    if session.distill_seed.get() == 0:  # not reseeded in this session: the link's seed
        session.distill_seed.set(url_value("cbrs", 0, cast=int, bounds=(0, 10**6)))
    seed = session.distill_seed.get()
    widgets_to_url(DISTILL_FIELDS)
    set_url(cbrs=seed)
    results = {name: _distill(name, seed, latent) for name in DISTILL_CONFIGS}
    for col, (name, (imgs, *_)) in zip(st.columns(3), results.items()):
        img = imgs[:1]
        lo, hi = float(img.min()), float(img.max())
        if stretch and hi > lo:
            img = (img - lo) / (hi - lo)
        col.markdown(f"**{DISTILL_TITLES[name]}**")
        col.image(to_uint8_image(torch.from_numpy(img), nrow=1, scale=4, padding=0),
                  caption=f"{name}: values {lo:.2f}–{hi:.2f}")
    st.caption(f"Weight seed {seed}. One 64x64 output each, enlarged 4x with nearest neighbour (no smoothing); "
               f"the spectra and scores below average {N_DISTILL} latents.")
    spectra = {DISTILL_SHORT[n]: (r[1], r[2], r[3]) for n, r in results.items()}
    st.plotly_chart(spectra_figure(spectra, "Mean power spectrum of the outputs (DC at the centre)"),
                    key="cb_distill_spectra")
    st.dataframe([{"decoder": name, "what it does": DISTILL_TITLES[name],
                   "artifact score": round(results[name][4], 2)} for name in DISTILL_CONFIGS],
                 hide_index=True, column_config=_score_help())
    st.caption("A checkerboard of period 2 is a spike at ±0.5 cycles/pixel (the corners and edge midpoints of "
               "the spectrum); period 4 adds spikes at ±0.25. The artifact score is the natural log of how far "
               "those bins stand above their neighbours (averaged over the period-2 and period-4 bins): about 0 "
               "for smooth images, 5+ for a strong checkerboard.")
