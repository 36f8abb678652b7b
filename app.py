"""Autoencoder Studio: the entry point. Builds the navigation and the shared sidebar; pages do the rest."""
import aecore  # noqa: F401  (first: the OpenMP wait policy must be set before torch loads; aecore/runtime.py)
import streamlit as st

from ui.state import init_runtime

st.set_page_config(page_title="Autoencoder Studio", page_icon=":material/blur_on:", layout="wide")
init_runtime()

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/reconstruct.py", title="Reconstruct & Denoise", icon=":material/auto_fix_high:",
            url_path="reconstruct"),
    st.Page("pages/latent.py", title="Latent Space", icon=":material/scatter_plot:", url_path="latent"),
    st.Page("pages/checkerboard.py", title="Checkerboard Lab", icon=":material/grid_on:", url_path="checkerboard"),
    st.Page("pages/inside.py", title="Inside the Models", icon=":material/biotech:", url_path="inside"),
    st.Page("pages/evaluation.py", title="Evaluation Lab", icon=":material/balance:", url_path="evaluation"),
]
page = st.navigation(PAGES)

with st.sidebar:
    from ui.sidebar import sidebar

    sidebar()

page.run()
