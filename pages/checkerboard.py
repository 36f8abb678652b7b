"""Checkerboard Lab: why transposed convolutions paint checkerboards, and how resize-convolution avoids them.
Thin: the arithmetic is in aecore.checkerboard, the layout in ui.checkerboard (one module per section)."""
import streamlit as st

from ui.checkerboard import arithmetic, distill, overlap, trained
from ui.widgets import require_app_frame

require_app_frame()
st.title("Checkerboard Lab")
st.caption("Why transposed convolutions (\"deconvolutions\") paint checkerboards into generated images, seen "
           "in the arithmetic, in random decoders and in trained ones, and how resize-convolution removes them. "
           "After Odena, Dumoulin & Olah, *Deconvolution and Checkerboard Artifacts*, Distill 2016.")

st.header("1 · The arithmetic of a transposed convolution", divider="gray")
arithmetic.calculator()
st.header("2 · Where the stamps overlap", divider="gray")
overlap.overlap_patterns()
st.header("3 · Random decoders: the pattern before training", divider="gray")
distill.random_decoders()
st.header("4 · Trained decoders, different upsampling", divider="gray")
trained.trained_decoders()
