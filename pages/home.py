"""Home: what the studio does, shown with pictures from a shipped model before anyone trains anything."""
import streamlit as st

from aecore.latent import manifold_grid, prior_samples
from aecore.metrics import reconstruct_batched
from ui.state import all_models, dataset
from ui.text import plain
from ui.widgets import image_grid, image_rows, require_app_frame

require_app_frame()
st.title("Autoencoder Studio")
st.markdown("An **autoencoder** squeezes an image through a small code and rebuilds it. Here you can train one, "
            "watch it learn, look at its code space, and see why some decoders paint checkerboards.")

cards = [
    ("pages/train.py", "Train", ":material/model_training:", "Pick a model and data, watch live loss curves and "
     "reconstructions."),
    ("pages/reconstruct.py", "Reconstruct", ":material/auto_fix_high:", "Originals beside noisy inputs and "
     "outputs, PSNR and SSIM; denoise your own pictures."),
    ("pages/latent.py", "Latent Space", ":material/scatter_plot:", "Codes coloured by digit, the VAE manifold, "
     "samples and interpolation."),
    ("pages/checkerboard.py", "Checkerboard Lab", ":material/grid_on:", "Transposed vs resize convolution, from "
     "arithmetic to artifacts."),
]
for col, (path, label, icon, text) in zip(st.columns(4), cards):
    with col.container(border=True):
        st.page_link(path, label=f"**{label}**", icon=icon)
        st.caption(text)


def showcase_model():
    """Prefer the lecture's 2-D conv VAE, whose code space can be drawn directly."""
    models = all_models()
    for key, entry in models.items():
        spec = entry.checkpoint.spec
        if entry.source == "shipped" and spec.family == "conv_vae" and spec.latent_dim == 2:
            return entry
    return next(iter(models.values()), None)


entry = showcase_model()
if entry is None:
    st.info("No trained model is available yet. Open **Train** and press Start: the default conv VAE learns the "
            "bundled digits in under a minute, then every page shows what it learned.")
    st.page_link("pages/train.py", label="Train a model now", icon=":material/play_arrow:")
    st.stop()

data = dataset(entry.checkpoint.dataset)
if data is None:
    st.stop()
st.subheader(f"What a trained model does: {plain(entry.label)}")
_, out = reconstruct_batched(entry.model, data.test_x[:12])
image_rows({"test image": data.test_x[:12], "reconstruction": out}, target=56)
if entry.model.variational:
    left, right = st.columns(2)
    with left:
        st.markdown("**New digits**, decoded from random codes z ~ N(0, I)")
        image_grid(prior_samples(entry.model, 32, seed=0), nrow=8, target=44)
    if entry.checkpoint.spec.latent_dim == 2:
        with right:
            st.markdown("**The whole 2-D code space**, decoded on a grid")
            images, _ = manifold_grid(entry.model, 12)
            image_grid(images, nrow=12, target=30)
