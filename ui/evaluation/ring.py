"""Section 6 of the Evaluation Lab: from a Gaussian to anything (Doersch 2016, fig. 2). Samples z ~ N(0, I) mapped
through g(z) = z/10 + z/||z|| form a ring: a decoder can turn a simple prior into a complicated distribution."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from aecore.divergences import ring
from aecore.viz import room
from ui.widgets import set_url, url_value

SIZES = (500, 1000, 2000, 5000)
DEFAULT_SIZE = 1000  # the ring is plain at 1,000; each 1,000 SVG markers cost a GPU-less browser ~0.15 s a redraw


@st.fragment
def gaussian_to_ring() -> None:
    st.markdown("A VAE samples codes from a plain round Gaussian, yet produces digits. How can something so simple "
                "become something so complicated? A fixed function is enough: here g(z) = z/10 + z/‖z‖ bends "
                "Gaussian samples onto a ring. A decoder is such a function, learned.")
    c1, c2 = st.columns([2, 1])
    n = c1.select_slider("Samples", SIZES, url_value("ringn", DEFAULT_SIZE, SIZES, int))
    seed = c2.number_input("Seed", 0, 999, url_value("ringseed", 0, cast=int, bounds=(0, 999)), key="ev_ringseed")
    set_url(ringn=n, ringseed=seed)
    z, gz = (t.numpy() for t in ring(n, int(seed)))
    fig = make_subplots(1, 2, subplot_titles=["z ~ N(0, I)", "g(z) = z/10 + z/‖z‖"], horizontal_spacing=0.08)
    for i, pts in enumerate((z, gz), start=1):
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers",
                                 marker=dict(size=3, opacity=0.5, color="#1f77b4"),
                                 showlegend=False, hovertemplate="(%{x:.2f}, %{y:.2f})<extra></extra>"), 1, i)
        fig.update_xaxes(title_text="first coordinate", range=[-3.5, 3.5], row=1, col=i)
        fig.update_yaxes(title_text="second coordinate", range=[-3.5, 3.5], scaleanchor=f"x{'' if i == 1 else i}",
                         row=1, col=i)
    fig.update_layout(title=f"{n:,} samples of a 2-D standard Gaussian, before and after g (unitless)", height=420,
                      margin=room(t=70))
    st.plotly_chart(fig, key="ev_ring")
    st.caption("Takeaway: the prior need not look like the data. With enough capacity, the decoder's layers learn the "
               "bending, which is why a VAE's prior can stay N(0, I).")
