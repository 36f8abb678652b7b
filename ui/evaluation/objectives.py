"""Section 1 of the Evaluation Lab: one isotropic Gaussian fitted to a 2-D mixture by four objectives (Theis et al.
2016, fig. 1). The visitor edits the mixture's components; each objective's fit is drawn over the data density."""
from __future__ import annotations

import numpy as np
import pandas as pd  # the table the visitor edits
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from aecore import divergences as dv
from aecore.viz import room
from ui import session
from ui.widgets import set_url, url_value

NAMES = {"kl": "KL(data ‖ model)", "reverse_kl": "KL(model ‖ data)", "mmd": "MMD", "js": "Jensen-Shannon"}
HELP = {"kl": "maximum likelihood: the model must put mass wherever the data is, so it covers every mode",
        "reverse_kl": "the model is punished for mass where the data has none, so it hides inside one mode",
        "mmd": "compares average similarities under Gaussian kernels of several widths",
        "js": "the symmetric divergence a GAN's discriminator estimates"}
DEFAULT = "-2.5,-1;2.5,-1;0,2.5"  # three modes: a triangle
MAX_COMPONENTS, LIMIT = 6, 4.0
GRID_EXTENT, GRID_CELLS = 7.0, 61


def parse_points(text: str) -> list[tuple[float, float]] | None:
    """'x,y;x,y' from a link into component means inside the drawn square; None when any part is not valid."""
    try:
        pts = [tuple(float(v) for v in part.split(",")) for part in text.split(";") if part.strip()]
    except ValueError:
        return None
    ok = 1 <= len(pts) <= MAX_COMPONENTS and all(len(p) == 2 and all(abs(v) <= LIMIT for v in p) for p in pts)
    return pts if ok else None


def format_points(points) -> str:
    return ";".join(f"{x:g},{y:g}" for x, y in points)


@st.cache_data(show_spinner=False, max_entries=64)
def fits(points: tuple, sigma: float, seed: int) -> dict[str, dv.Fit]:
    mix = dv.Mixture.of(points, sigma)
    return dv.fit_gaussians(mix, dv.OBJECTIVES, seed, extent=GRID_EXTENT, cells=GRID_CELLS)


def figure(points, sigma: float, results: dict[str, dv.Fit]) -> go.Figure:
    axis, _, cells = dv.grid(GRID_EXTENT, 61)  # the drawn density: 61 x 61 looks the same as finer, and ships 3x less
    density = dv.Mixture.of(points, sigma).log_prob(cells).exp().view(len(axis), len(axis)).numpy()
    fig = make_subplots(1, 4, subplot_titles=[NAMES[o] for o in dv.OBJECTIVES], horizontal_spacing=0.04)
    theta = np.linspace(0, 2 * np.pi, 90)
    for i, o in enumerate(dv.OBJECTIVES, start=1):
        f = results[o]
        fig.add_trace(go.Heatmap(x=axis.numpy(), y=axis.numpy(), z=density, coloraxis="coloraxis",
                                 hovertemplate="x %{x:.1f}, y %{y:.1f}: data density %{z:.3f}<extra></extra>"), 1, i)
        for k, dash in ((1, "solid"), (2, "dot")):  # the fit's 1-sigma and 2-sigma circles
            r = k * f.sigma
            fig.add_trace(go.Scatter(x=f.mean[0] + r * np.cos(theta), y=f.mean[1] + r * np.sin(theta), mode="lines",
                                     line=dict(color="#d62728", width=2, dash=dash), showlegend=False,
                                     hoverinfo="skip"), 1, i)
        fig.add_trace(go.Scatter(x=[f.mean[0]], y=[f.mean[1]], mode="markers", marker=dict(color="#d62728", size=8),
                                 showlegend=False, hovertemplate=f"fitted mean ({f.mean[0]:.2f}, {f.mean[1]:.2f}), "
                                 f"σ = {f.sigma:.2f}<extra></extra>"), 1, i)
        fig.update_xaxes(title_text="x (data units)", range=[-6, 6], constrain="domain", row=1, col=i)
        fig.update_yaxes(range=[-6, 6], scaleanchor=f"x{'' if i == 1 else i}", constrain="domain", row=1, col=i,
                         title_text="y (data units)" if i == 1 else None)
    fig.update_layout(title="An isotropic Gaussian (red: 1σ and 2σ circles) fitted to the data density (shaded)",
                      coloraxis=dict(colorscale="Blues", colorbar=dict(title="density")), height=360,
                      margin=room(t=80, l=75, r=120, b=10))
    return fig


@st.fragment
def objective_fits() -> None:
    st.markdown("A model too simple for its data must compromise, and **the objective decides how**. Here the data "
                "is a mixture of round Gaussian blobs and the model a single round Gaussian. Edit the blobs' centres "
                "in the table (add or delete rows) and watch the four fits move.")
    points = parse_points(url_value("mix", DEFAULT)) or parse_points(DEFAULT)
    if session.mixture_table.get() is None:  # the editor stores edits as changes to its data: keep that data fixed
        session.mixture_table.set(points)
    left, right = st.columns([1, 2])
    with left:
        start = pd.DataFrame(session.mixture_table.get(), columns=["x", "y"])
        table = st.data_editor(start, num_rows="dynamic", key="ev_mix", hide_index=True, column_config={
            c: st.column_config.NumberColumn(c, min_value=-LIMIT, max_value=LIMIT, step=0.5,
                                             help=f"{c} of a blob's centre (-4 to 4)") for c in ("x", "y")})
        values = table[["x", "y"]].to_numpy(dtype=float)
        edited = [(float(x), float(y)) for x, y in np.clip(values[np.isfinite(values).all(1)], -LIMIT, LIMIT)]
        if not 1 <= len(edited) <= MAX_COMPONENTS:
            st.warning(f"The mixture needs 1 to {MAX_COMPONENTS} blobs; showing the last valid one.")
            edited = points
        sigma = st.slider("Blob width σ", 0.3, 1.5, url_value("mixsd", 0.6, cast=float, bounds=(0.3, 1.5)), 0.1,
                          help="The standard deviation of every blob, in the same units as x and y.")
        seed = st.number_input("Seed", 0, 999, url_value("mixseed", 0, cast=int, bounds=(0, 999)),
                               help="Where the optimiser starts: four seeded starts, the best one is kept.")
    set_url(mix=format_points(edited), mixsd=sigma, mixseed=seed)
    results = fits(tuple(edited), float(sigma), int(seed))
    with right:
        st.dataframe([{"objective": NAMES[o], "fitted mean": f"({f.mean[0]:.2f}, {f.mean[1]:.2f})",
                       "fitted σ": f"{f.sigma:.2f}", "divergence at the fit": f"{f.value:.3f}"}
                      for o, f in results.items()], hide_index=True, column_config={
                         "divergence at the fit": st.column_config.TextColumn(
                             help="How far the best single Gaussian stays from the data by that objective's own "
                                  "measure (nats for the KLs and JS; MMD² has no unit). 0 would be a perfect fit.")})
        st.markdown("\n".join(f"- **{NAMES[o]}**: {HELP[o]}" for o in dv.OBJECTIVES))
    st.plotly_chart(figure(edited, sigma, results), key="ev_fits")
    wide, narrow = results["kl"].sigma, results["reverse_kl"].sigma
    st.caption(f"Takeaway: maximum likelihood (KL(data ‖ model)) spreads the model over every blob (σ = {wide:.2f}) "
               f"and so puts mass between them where no data lies; reverse KL hugs one blob (σ = {narrow:.2f}) and "
               "ignores the rest. A model judged by one objective can look bad by another: say which one you report.")

