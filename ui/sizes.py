"""Inside the Models, last section: how big should the code be? The shipped conv VAEs trained the same way with
z = 2, 4, 10, 20 (bench/build_checkpoints.py), 64 samples from each as the source's 8x8 grid, beside the test
numbers recorded when they were built (Kingma & Welling fig. 5; the source's z = 2 vs z = 4)."""
from __future__ import annotations

import streamlit as st

from aecore.latent import prior_samples
from ui.state import shipped_models
from ui.widgets import image_grid, set_url, url_value

SIZES = ("conv_vae_z2", "conv_vae_z4", "conv_vae_z10", "conv_vae_z20")


@st.cache_resource(show_spinner=False, max_entries=32)
def _samples(key: str, seed: int):
    return prior_samples(shipped_models()[key].model, 64, seed)


@st.fragment
def latent_sizes() -> None:
    models = shipped_models()
    present = [f"shipped:{name}" for name in SIZES if f"shipped:{name}" in models]
    if len(present) < 2:
        st.info("The shipped conv VAEs of several code sizes are not here: `python bench/build_checkpoints.py "
                "--only conv_vae_z10,conv_vae_z20` builds them.", icon=":material/info:")
        return
    st.markdown("The same conv VAE, trained the same way, with codes of 2 to 20 numbers. A bigger code keeps more "
                "of each digit (lower -ELBO, sharper reconstructions); the **active units** count the dimensions the "
                "model really uses. Its random samples do not simply get better: look at where they go wrong.")
    seed = st.columns(4)[0].number_input("Seed", 0, 999, url_value("zseed", 0, cast=int, bounds=(0, 999)),
                                         key="in_zseed", help="The 64 codes drawn from the prior.")
    set_url(zseed=seed)
    for col, key in zip(st.columns(len(present)), present):
        z = models[key].checkpoint.spec.latent_dim
        m = models[key].checkpoint.metrics
        image_grid(_samples(key, int(seed)), nrow=8, target=16, where=col,
                   caption=f"z = {z}: -ELBO {m.get('neg_elbo', float('nan')):.1f}")
    st.dataframe([{"code size z": models[k].checkpoint.spec.latent_dim,
                   "-ELBO (nats)": round(models[k].checkpoint.metrics.get("neg_elbo", float("nan")), 1),
                   "IW-NLL, k = 50 (nats)": round(models[k].checkpoint.metrics.get("iw_nll_k50", float("nan")), 1),
                   "active units": models[k].checkpoint.metrics.get("active_units"),
                   "PSNR (dB)": round(models[k].checkpoint.metrics.get("psnr", float("nan")), 1)} for k in present],
                 hide_index=True, column_config={
                     "-ELBO (nats)": st.column_config.NumberColumn(help="Test images, lower is better."),
                     "IW-NLL, k = 50 (nats)": st.column_config.NumberColumn(
                         help="The tighter likelihood estimate (Evaluation Lab, section 2); lower is better."),
                     "active units": st.column_config.NumberColumn(
                         help="Code dimensions the model uses (KL above 0.01 nats on the test images).")})
    st.caption("Numbers measured on the 1,000 test digits when each model was built (its checkpoint records them). "
               "z = 2 against z = 4 is the source's comparison: lower loss, crisper samples, more kinds of digit. With "
               "20 numbers the samples turn patchy: the encoder's clouds no longer fill the prior, and random codes "
               "land between them, where the decoder never learned anything (the likelihood still improves).")
