"""Checkerboard Lab: transposed convolution against resize-convolution."""
import streamlit as st

from aecore.checkerboard import overlap_map, transposed_output_size
from aecore.viz import heatmap
from ui.widgets import require_app_frame

require_app_frame()
st.title("Checkerboard Lab")
st.caption("Why transposed convolutions paint checkerboards, and how resize-convolution avoids them. "
           "The full lab (step-by-step arithmetic, Distill's decoder stacks, trained decoders side by side) is "
           "being built; here is the core idea.")
c1, c2, c3 = st.columns(3)
kernel = c1.slider("Kernel size", 1, 7, 3)
stride = c2.slider("Stride", 1, 4, 2)
size = c3.slider("Input size", 2, 12, 6)
out = transposed_output_size(size, kernel, stride)
st.markdown(f"Output size = (input - 1) x stride + kernel = ({size} - 1) x {stride} + {kernel} = **{out}**")
counts = overlap_map((size, size), kernel, stride)
st.plotly_chart(heatmap(counts, f"How many input pixels reach each output pixel (kernel {kernel}, stride {stride})",
                        colorbar="contributions", text=out <= 24))
if kernel % stride:
    st.warning(f"Kernel {kernel} is not divisible by stride {stride}: neighbouring outputs get different numbers of "
               "contributions, the checkerboard.")
else:
    st.success(f"Kernel {kernel} is divisible by stride {stride}: the interior is even.")
