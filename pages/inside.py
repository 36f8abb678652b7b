"""Inside the models: the layers with their shapes, one latent dimension at a time, what the first convolution
learns (and whether denoising sharpens it), and a linear AE against PCA. Thin: the maths is in aecore.anatomy, the
sections in ui/inside.py."""
import streamlit as st

from ui import inside, sizes
from ui.timelapse import timelapse
from ui.widgets import picked_model_and_data, require_app_frame, sections

require_app_frame()
st.title("Inside the models")
entry, data = picked_model_and_data(default="shipped:talk_vae")  # opens on a model with a time-lapse
st.caption("What a trained autoencoder is made of and what it has learned. Sections 1-5 follow the model picked in "
           "the sidebar; sections 6-7 compare the shipped linear AEs with PCA and with "
           "each other, section 8 the shipped conv VAEs' code sizes.")
sections("intab", [("Time-lapse", "How it learned: a time-lapse of training", lambda: timelapse(entry, data)),
                   ("Layers", "Layer by layer", lambda: inside.layers(entry)),
                   ("Point or cloud", "A code is a point (AE) or a cloud (VAE)", lambda: inside.clouds(entry, data)),
                   ("Traversals", "One latent dimension at a time", lambda: inside.traversal(entry, data)),
                   ("First-layer filters", "What the first layer learns", lambda: inside.filters(entry, data)),
                   ("AE vs PCA", "A linear autoencoder is close to PCA", inside.pca),
                   ("Overcomplete", "A code bigger than its input copies", inside.overcomplete),
                   ("Code size", "How big should the code be?", sizes.latent_sizes)])
