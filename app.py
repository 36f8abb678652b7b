"""Autoencoder Studio: the entry point. Builds the navigation and the shared sidebar; pages do the rest."""
import aecore  # noqa: F401  (first: the OpenMP wait policy must be set before torch loads; aecore/runtime.py)
import streamlit as st

from aecore.runtime import release_freed_memory
from ui.state import init_runtime

st.set_page_config(page_title="Autoencoder Studio", page_icon=":material/blur_on:", layout="wide")
init_runtime()

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="start", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/reconstruct.py", title="Reconstruct & Denoise", icon=":material/auto_fix_high:",
            url_path="reconstruct"),
    st.Page("pages/latent.py", title="Latent Space", icon=":material/scatter_plot:", url_path="latent"),
    st.Page("pages/checkerboard.py", title="Checkerboard Lab", icon=":material/grid_on:", url_path="checkerboard"),
    st.Page("pages/inside.py", title="Inside the Models", icon=":material/biotech:", url_path="inside"),
    st.Page("pages/evaluation.py", title="Evaluation Lab", icon=":material/balance:", url_path="evaluation"),
]
# The default page lives at "/"; "/home", which people type and older links use, is a hidden alias of it.
HOME_ALIAS = st.Page(lambda: st.switch_page(PAGES[0]), title="Home", url_path="home", visibility="hidden")
page = st.navigation([*PAGES, HOME_ALIAS])

with st.sidebar:
    from ui.sidebar import sidebar

    sidebar()

try:
    page.run()
finally:  # also when a widget change stops this run for the next one
    release_freed_memory()
