"""Section 2 of the Checkerboard Lab: where the stamps overlap. The lecture's kernel/stride cases, a grid of 1-D
overlap profiles, and how stacking layers compounds the unevenness.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from aecore import checkerboard as cb
from aecore.viz import room
from ui.widgets import UrlField, seed_widgets, widgets_to_url
from ui.checkerboard.figures import EVEN, UNEVEN, _colorbar, _heat, _image_axes, _shape, scale


MAX_COUNT = 5  # the most contributions a pixel gets in the grid below (kernel 5, stride 1): the top of its scale
LECTURE_CASES = {(3, 2): "uneven: 1, 2, 1, 2", (4, 2): "even in the interior", (3, 1): "even, but no upsampling"}


STACK_FIELDS = {"cb_stack_kernel": UrlField("cbsk", 3, int, (2, 3, 4, 5)),
                "cb_stack_stride": UrlField("cbss", 2, int, (1, 2, 3))}


@st.fragment
def overlap_patterns() -> None:
    st.markdown("Along one axis, an interior output pixel at offset *r* (mod *s*) gets ⌊k/s⌋ contributions, "
                "plus one more if *r* < k mod s. So the pattern is **even exactly when the kernel size is "
                "divisible by the stride**; otherwise it repeats every *s* pixels. A 2-D map is the product of "
                "the two axes, which is why a 1, 2 stripe becomes a 1, 2, 4 checkerboard.")
    c1, c2, c3 = st.columns(3)
    for col, (k, s), text in zip((c1, c2, c3), LECTURE_CASES, (
            "Counts 1, 2, 1, 2…: every other pixel gets twice the input, a checkerboard of period 2. This is "
            "the lecture's decoder.",
            "Counts 2, 2, 2… inside; only the border is uneven. The learnt weights still have to come out "
            "even, and often do not quite.",
            "Every pixel gets k contributions, perfectly even, but the image does not grow: no upsampling "
            "at all.")):
        badge = ":red-badge[uneven]" if cb.pattern_period(k, s) else ":green-badge[even]"
        with col.container(border=True):
            st.markdown(f"**Kernel {k}, stride {s}** {badge}  \n{text}")
    st.plotly_chart(overlap_grid_figure(), key="cb_grid")

    st.markdown("**Stacking layers compounds it.** A decoder doubles the size several times; each transposed "
                "convolution stamps onto an already uneven map, so the unevenness multiplies and its period "
                "grows to s, s², s³.")
    a, b, c = st.columns([1, 1, 2], vertical_alignment="bottom")
    seed_widgets(STACK_FIELDS)
    kernel = a.select_slider("Kernel size (stacked layers)", [2, 3, 4, 5], key="cb_stack_kernel")
    stride = b.select_slider("Stride (stacked layers)", [1, 2, 3], key="cb_stack_stride")
    widgets_to_url(STACK_FIELDS)
    period = cb.pattern_period(kernel, stride)
    if period is None:
        c.markdown(f":green-badge[even] kernel {kernel} is divisible by stride {stride}: each layer alone is "
                   "even inside, and so is the stack.")
    else:
        c.markdown(f":red-badge[uneven] kernel {kernel} is not divisible by stride {stride}: period {period} "
                   "for one layer, and it compounds.")
    st.plotly_chart(stacking_figure(kernel, stride), key="cb_stack")
    st.dataframe(stacking_table(kernel, stride), hide_index=True)


@st.cache_data(show_spinner=False)
def overlap_grid_figure() -> go.Figure:
    """Small multiples: 1-D interior overlap profiles for kernels 2-5 (rows) x strides 1-3 (columns), one period
    shaded, bars coloured by their count (one colour scale for all: Viridis over 0-MAX_COUNT)."""
    kernels, strides, n_show = (2, 3, 4, 5), (1, 2, 3), 12
    titles = []
    for k in kernels:
        for s in strides:
            p = cb.overlap_pattern(k, s)
            what = ("even" if p.period is None else f"gaps, period {p.period}" if p.has_gaps
                    else f"period {p.period}")
            star = "★ " if (k, s) in LECTURE_CASES else ""
            titles.append(f"{star}k{k} s{s}: {what} ({', '.join(map(str, p.cycle))})")
    fig = make_subplots(len(kernels), len(strides), subplot_titles=titles, shared_yaxes=True,
                        vertical_spacing=0.09, horizontal_spacing=0.05)
    for i, k in enumerate(kernels, 1):
        for j, s in enumerate(strides, 1):
            p = cb.overlap_pattern(k, s, periods=n_show)
            seg = p.profile[p.start + p.phase: p.start + p.phase + n_show]
            x = np.arange(len(seg))
            # colours as strings: plotly.js warned (a stack trace in the console, ~1 s for this figure) for every
            # bar whose colour was a number on a colour axis
            colours = sample_colorscale("Viridis", np.clip(seg / MAX_COUNT, 0, 1))
            fig.add_trace(go.Bar(x=x, y=seg, marker=dict(color=colours), showlegend=False,
                                 hovertemplate=f"k{k} s{s}<br>output pixel %{{x}}: %{{y}} contribution(s)"
                                               "<extra></extra>"), i, j)
            if p.period is not None:
                fig.add_vrect(x0=-0.5, x1=p.period - 0.5, fillcolor=UNEVEN, opacity=0.12, line_width=0,
                              row=i, col=j)
            fig.update_xaxes(title="output pixel (interior)" if i == len(kernels) else None, dtick=2, row=i, col=j)
            fig.update_yaxes(title="contributions" if j == 1 else None, range=[0, MAX_COUNT + 0.4], dtick=1,
                             row=i, col=j)
    for ann in fig.layout.annotations:
        ann.font = dict(size=12, color=EVEN if ": even" in ann.text else UNEVEN)
    fig.update_layout(title="Overlap along one axis, away from the border (shaded: one period of the pattern; "
                            "★ the lecture's cases)",
                      height=640, bargap=0.15, margin=room(t=80))
    return fig


@st.cache_data(show_spinner=False)
def stacking_table(kernel: int, stride: int) -> list[dict]:
    rows = []
    for layers in (1, 2, 3):
        p = cb.overlap_pattern(kernel, stride, layers)
        cycle = ", ".join(map(str, p.cycle)) if len(p.cycle) <= 8 else f"{len(p.cycle)} values"
        ratio = "gaps (0)" if p.has_gaps else f"{p.ratio:.2g}"
        rows.append({"layers": layers, "period (pixel)": p.period or "even", "one period": cycle,
                     "max/min, 1-D": ratio, "max/min, 2-D": "gaps (0)" if p.has_gaps else f"{p.ratio ** 2:.3g}"})
    return rows


@st.cache_data(show_spinner=False)
def stacking_figure(kernel: int, stride: int, size: int = 4) -> go.Figure:
    """2-D overlap maps after 1, 2, 3 stacked layers, each divided by its interior mean (one colour scale)."""
    fig = make_subplots(1, 3, horizontal_spacing=0.06, subplot_titles=[
        f"{n} layer{'s' if n > 1 else ''}: {_shape(cb.overlap_map((size, size), kernel, stride, layers=n))}"
        for n in (1, 2, 3)])
    top = 1.0
    for n in (1, 2, 3):
        counts = cb.overlap_map((size, size), kernel, stride, layers=n).astype(np.float64)
        inner = cb.overlap_pattern(kernel, stride, n).interior
        rel = counts / (float(inner.mean()) ** 2)
        top = max(top, float(rel.max()))
        fig.add_trace(_heat(rel, text=None, hover="col %{x}, row %{y}: %{z:.2f} x the interior mean"), 1, n)
    _image_axes(fig, 3, x_title="column (pixel)", y_title="row (pixel)")
    fig.update_layout(title=f"Overlap after stacked transposed convolutions (k{kernel} s{stride}, "
                            f"{size}x{size} input)",
                      coloraxis=dict(colorscale=scale("Magma"), cmin=0, cmax=min(top, 3.0),
                                     colorbar=_colorbar("contributions ÷ interior mean")),
                      height=330, margin=room(t=60, r=130, b=10))
    return fig
