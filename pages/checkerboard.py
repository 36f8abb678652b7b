"""Checkerboard Lab: why transposed convolutions paint checkerboards, and how resize-convolution avoids them.
Thin: the arithmetic is in aecore.checkerboard, the layout in ui.checkerboard (one module per section)."""
import streamlit as st

from ui.checkerboard import arithmetic, distill, overlap, trained
from ui.checkerboard.quick_train import progress_elsewhere
from ui.widgets import require_app_frame, sections

require_app_frame()
st.title("Checkerboard Lab")
st.caption("Why transposed convolutions (\"deconvolutions\") paint checkerboards into generated images, seen "
           "in the arithmetic, in random decoders and in trained ones, and how resize-convolution removes them. "
           "After Odena, Dumoulin & Olah, *Deconvolution and Checkerboard Artifacts*, Distill 2016.")

progress = st.container()  # above the tabs: a set training in the background, whichever section is open
shown = sections("cbtab", [("Arithmetic", "The arithmetic of a transposed convolution", arithmetic.calculator),
                           ("Overlaps", "Where the stamps overlap", overlap.overlap_patterns),
                           ("Random decoders", "Random decoders: the pattern before training", distill.random_decoders),
                           ("Trained decoders", "Trained decoders, different upsampling", trained.trained_decoders)])
progress_elsewhere(progress, shown)  # section 4 shows the set's progress itself
