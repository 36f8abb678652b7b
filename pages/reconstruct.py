"""Reconstruct & Denoise: originals beside noisy inputs and outputs, with honest metrics."""
import streamlit as st
import torch

from aecore.noise import NOISE_KINDS, Noise
from ui import glossary, recon
from ui.state import all_models
from ui.text import plain
from ui.widgets import (image_rows, model_changed, picked_model_and_data, require_app_frame, set_url,
                        settings_reader, url_noise, url_value)

require_app_frame()
st.title("Reconstruct & denoise")
entry, data = picked_model_and_data(default="shipped:denoising_ae")  # opens on denoising, the page's best case
st.caption(f"{plain(entry.label)}. Test images from {data.info.title}; the model never saw them while training.")
from_link = not model_changed("reconstruct", entry.key)  # after a switch of model: that model's own defaults
link = settings_reader(from_link)

c1, c2, c3, c4 = st.columns(4)
count = c1.slider("Images", 4, 24, url_value("n", 10, cast=int, bounds=(4, 24)))
seed = c2.number_input("Seed (which images)", 0, 10**6, url_value("seed", 0, cast=int, bounds=(0, 10**6)))
kinds = list(NOISE_KINDS)
trained_noise = entry.checkpoint.config.noise
noise0 = url_noise("noise", trained_noise, max_level=1.0) if from_link else Noise.parse(trained_noise)
kind = c3.selectbox("Noise on the input", kinds, kinds.index(noise0.kind), format_func=glossary.NOISE_LABELS.get,
                    key=f"noise_kind_{entry.key}",
                    help="Starts at the noise the model was trained with. " + glossary.NOISE_EXPLAINED)
level = c4.slider("Noise level", 0.0, 1.0, float(noise0.level or 0.3), 0.05, disabled=kind == "none",
                  key=f"noise_level_{entry.key}")
noise = Noise(kind, level if kind != "none" else 0.0)
indices_text = st.text_input("Or pick test images by index (comma-separated)", url_value("idx", "")[:200],
                             placeholder=f"e.g. 0, 7, 42 (0 to {len(data.test_x) - 1})")

indices, problem = recon.choose_indices(indices_text, len(data.test_x), count, int(seed))
if problem:
    st.warning(problem)
shape = entry.checkpoint.spec.input_shape
others = {k: e for k, e in all_models().items() if k != entry.key and e.checkpoint.spec.input_shape == shape}
choices = [None, *others]
compare_key = st.selectbox("Compare with (same image shape)", choices,
                           choices.index(link("cmp", recon.default_comparison(entry, others), choices)),
                           format_func=lambda k: "nothing" if k is None else others[k].label,
                           key=f"compare_{entry.key}",
                           help="E.g. a denoising-trained model against the same architecture trained on clean images.")
set_url(n=count, seed=seed, noise=str(noise), idx=indices_text.strip() or None, cmp=compare_key)

x = data.test_x[indices]
noisy, out = recon.run(entry.model, x, noise, int(seed))
rows = {"original": x, **({"noisy input": noisy} if noise.active else {}), "reconstruction": out}
if compare_key:
    rows[f"compare: {others[compare_key].label}"] = recon.run(others[compare_key].model, x, noise, int(seed))[1]
image_rows(rows)

st.subheader("Metrics")
table, summary = recon.metrics_table(x, noisy, out, indices)
m = st.columns(len(summary))
for col, (name, value) in zip(m, summary.items()):
    col.metric(name, value, help=glossary.explain(glossary.SUMMARY_TERMS[name]))
if entry.model.variational:
    st.markdown("**-ELBO on these images** (nats per image; lower is better)", help=glossary.explain("-ELBO"))
    st.dataframe(recon.elbo_table(entry.model, x, noisy), hide_index=True, column_config={
        "KL": st.column_config.NumberColumn(help=glossary.explain("KL")),
        "reconstruction": st.column_config.NumberColumn(help="How surprised the decoder is by the real pixels, in "
                                                        "nats: the reconstruction error of -ELBO.")})
with st.expander("Per-image metrics"):
    st.dataframe(table, hide_index=True)

st.subheader("Robustness to noise")
curve_kind = kind if kind != "none" else "gaussian"
st.caption(f"PSNR and SSIM of the reconstruction against the clean image as {curve_kind} noise grows, over 200 "
           "test images, next to the noisy input itself (the do-nothing baseline).")
models = {entry.label: entry.model} | ({others[compare_key].label: others[compare_key].model} if compare_key else {})
psnr_fig, ssim_fig = recon.noise_curves(models, data.test_x[:200], curve_kind)
a, b = st.columns(2)
a.plotly_chart(psnr_fig)
b.plotly_chart(ssim_fig)

st.subheader("Your own images")
files = st.file_uploader("Your pictures: PNG, JPG, WEBP, GIF or BMP, colour or grey", type=recon.UPLOAD_TYPES,
                         accept_multiple_files=True, help=recon.UPLOAD_HELP)
if files:
    converted, errors = recon.convert_uploads(files, entry.checkpoint.spec.input_shape)
    for msg in errors:  # Markdown with the file names in code spans: shown as typed
        st.error(msg)
    if converted:
        imgs = torch.stack(list(converted.values()))
        noisy_u, out_u = recon.run(entry.model, imgs, noise, int(seed))
        image_rows({"as converted": imgs, **({"noisy input": noisy_u} if noise.active else {}),
                    "reconstruction": out_u})
        st.caption(plain("Left to right: " + ", ".join(converted)))  # file names are untrusted: never Markdown
        st.caption("Converted to the model's input: turned upright, put on white where transparent, resized, grey "
                   "or colour as the model expects, and inverted when the picture is dark-on-light (MNIST digits "
                   "are light-on-dark).")
