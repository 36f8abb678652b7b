"""Inside the models: the layers with their shapes, one latent dimension at a time, what the first convolution
learns (and whether denoising sharpens it), and a linear AE against PCA. Thin: the maths is in aecore.anatomy, the
sections in ui/inside.py."""
import streamlit as st

from ui import inside
from ui.widgets import picked_model_and_data, require_app_frame

require_app_frame()
st.title("Inside the models")
entry, data = picked_model_and_data()
st.caption("What a trained autoencoder is made of and what it has learned. Sections 1-4 follow the model picked in "
           "the sidebar; section 5 compares the shipped linear AE with PCA.")
st.header("1 · Layer by layer", divider="gray")
inside.layers(entry)
st.header("2 · A code is a point (AE) or a cloud (VAE)", divider="gray")
inside.clouds(entry, data)
st.header("3 · One latent dimension at a time", divider="gray")
inside.traversal(entry, data)
st.header("4 · What the first layer learns", divider="gray")
inside.filters(entry, data)
st.header("5 · A linear autoencoder is close to PCA", divider="gray")
inside.pca()
