"""Section 1 of the Checkerboard Lab: the arithmetic of a transposed convolution. A calculator that builds it
step by step (zero insertion, padding, stride-1 convolution with the flipped kernel) and shows where the stamps
overlap.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from aecore import checkerboard as cb
from aecore.viz import room
from ui import session
from ui.widgets import UrlField, seed_widgets, set_url, url_value, widgets_to_url
from ui.checkerboard.figures import TEXT_MAX, _colorbar, _heat, _image_axes, _shape, cell_text


INPUTS = {
    "lecture_6x4": "Lecture: 6x4 input, kernel 3, stride 2 -> 11x7 zero-inserted -> 13x9",
    "lecture_stamp": "Lecture: [[7,10],[7,10]] with filter [[1,0],[2,0]], stride 1 -> [[7,10,0],[21,30,0],[14,20,0]]",
    "ones": "All ones (the output counts the overlaps)",
    "random": "Random integers 0-9",
}
# what choosing an input sets the sliders to: kernel, stride, padding, output padding, dilation, rows, cols
PRESETS = {"lecture_6x4": (3, 2, 0, 0, 1, 6, 4), "lecture_stamp": (2, 1, 0, 0, 1, 2, 2),
           "ones": (3, 2, 0, 0, 1, 5, 5), "random": (3, 2, 1, 1, 1, 5, 5)}
SLIDERS = ("cb_kernel", "cb_stride", "cb_padding", "cb_op", "cb_dilation", "cb_rows", "cb_cols")
URL_NAMES = {"cb_kernel": "cbk", "cb_stride": "cbs", "cb_padding": "cbp", "cb_op": "cbop", "cb_dilation": "cbd",
             "cb_rows": "cbh", "cb_cols": "cbw"}
SEED_FIELD = UrlField("cbseed", 0, int, bounds=(0, 999))
LIMITS = {"cb_kernel": (1, 7), "cb_stride": (1, 4), "cb_padding": (0, 4), "cb_op": (0, 3), "cb_dilation": (1, 3),
          "cb_rows": (1, 12), "cb_cols": (1, 12)}


def _apply_preset() -> None:
    for key, value in zip(SLIDERS, PRESETS[session.arithmetic_input.get()]):
        st.session_state[key] = value  # the sliders' widget keys: Streamlit's public way to move a widget


@st.fragment
def calculator() -> None:
    st.markdown("A transposed convolution with stride *s* is the same as: **put s − 1 zeros between the input "
                "pixels, pad the border, and run an ordinary stride-1 convolution with the kernel rotated by "
                "180°**. Each input pixel stamps a weighted copy of the kernel onto the output, s pixels apart; "
                "where stamps overlap, their contributions add up.")
    if session.arithmetic_input.get() is None:  # first visit: the link's input and sliders, else the lecture's
        session.arithmetic_input.set(url_value("cbin", "lecture_6x4", list(INPUTS)))
        _apply_preset()
        for key in SLIDERS:
            st.session_state[key] = url_value(URL_NAMES[key], st.session_state[key], cast=int, bounds=LIMITS[key])
    seed_widgets({"cb_input_seed": SEED_FIELD})
    left, right = st.columns([1, 1.25], gap="large")
    with left:
        kind = st.selectbox("Input", list(INPUTS), format_func=INPUTS.get, key="cb_input", on_change=_apply_preset,
                            help="Choosing one also sets the sliders to its settings.")
        fixed = kind == "lecture_stamp"
        a, b = st.columns(2)
        kernel = a.slider("Kernel size", *LIMITS["cb_kernel"], key="cb_kernel", disabled=fixed,
                          help="The lecture's stamping example fixes its 2x2 filter.")
        stride = b.slider("Stride", *LIMITS["cb_stride"], key="cb_stride")
        padding = a.slider("Padding", *LIMITS["cb_padding"], key="cb_padding",
                           help="In a transposed convolution, padding removes rows/columns from the output.")
        op = b.slider("Output padding", *LIMITS["cb_op"], key="cb_op",
                      help="Extra rows/columns at the bottom/right; must be smaller than max(stride, dilation).")
        dilation = a.slider("Dilation", *LIMITS["cb_dilation"], key="cb_dilation")
        seed = b.number_input("Seed", 0, 999, key="cb_input_seed", disabled=kind != "random")
        rows = a.slider("Input height", *LIMITS["cb_rows"], key="cb_rows", disabled=fixed)
        cols = b.slider("Input width", *LIMITS["cb_cols"], key="cb_cols", disabled=fixed)
    set_url(cbin=kind, **{URL_NAMES[key]: st.session_state[key] for key in SLIDERS})
    widgets_to_url({"cb_input_seed": SEED_FIELD})
    x, k = cb.example_input(kind, (rows, cols), kernel, int(seed))
    problems = cb.parameter_problems(x.shape, k.shape, stride, padding, op, dilation)
    with right:
        _sizes(x.shape, k.shape, stride, padding, op, dilation, ok=not problems)
        for p in problems:
            st.warning(p, icon=":material/block:")
        if not problems:
            _kernel_note(k, stride, dilation)
    _formula(x.shape, k.shape, stride, padding, op, dilation)
    if problems:
        return
    steps_fig, output_fig, overlap = _figures(x, k, stride, padding, op, dilation)
    st.plotly_chart(steps_fig, key="cb_steps")
    st.plotly_chart(output_fig, key="cb_output")
    # pixels closer than d(k-1) to the border of the uncropped output see the border; padding crops p of them
    margins = [max(0, dilation * (n - 1) - padding) for n in k.shape]
    inner = overlap[margins[0]: overlap.shape[0] - margins[0], margins[1]: overlap.shape[1] - margins[1]]
    if not inner.size:
        st.caption("Every output pixel here is near the border: make the input larger to see the interior.")
    elif inner.min() != inner.max():
        st.caption(f"Away from the border, output pixels receive between {inner.min():.0f} and {inner.max():.0f} "
                   "contributions: the same input value lands with different weight on neighbouring pixels. "
                   "That unevenness is the checkerboard.")
    else:
        st.caption(f"Away from the border, every output pixel receives {inner.min():.0f} contribution(s): even, "
                   f"no checkerboard from the overlap{'' if stride > 1 else ' (but stride 1 does not upsample)'}.")


def _formula(shape_in, kernel_shape, stride, padding, op, dilation) -> None:
    lines = ["H_out = (H_in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1"]
    for axis, n, k in zip(("H_out", "W_out"), shape_in, kernel_shape):
        lines.append(f"{axis} = {cb.output_size_formula(n, k, stride, padding, op, dilation)}")
    st.code("\n".join(lines), language=None)


def _sizes(shape_in, kernel_shape, stride, padding, op, dilation, ok: bool) -> None:
    if ok:
        st.markdown("**Sizes** (rows x columns), each axis from the formula below")
        h, w = (cb.transposed_output_size(n, k, stride, padding, op, dilation)
                for n, k in zip(shape_in, kernel_shape))
        zi = [(n - 1) * stride + 1 for n in shape_in]
        m1, m2, m3 = st.columns(3)
        m1.metric("Input", f"{shape_in[0]}x{shape_in[1]}")
        m2.metric("Zero-inserted", f"{zi[0]}x{zi[1]}")
        m3.metric("Output", f"{h}x{w}")


def _kernel_note(k: np.ndarray, stride: int, dilation: int) -> None:
    flipped = k[::-1, ::-1]
    shown = ("[" + ", ".join("[" + ", ".join(cell_text(r)) + "]" for r in flipped) + "]" if flipped.size <= 16
             else f"a {k.shape[0]}x{k.shape[1]} kernel of ones")
    st.caption(f"Step 4 slides the kernel rotated by 180°, {shown}, over the padded map (step 3) with stride 1"
               f"{f' and dilation {dilation}' if dilation > 1 else ''}: each position gives one output pixel. "
               f"Read the other way round, each input pixel stamps the kernel onto the output, {stride} "
               f"pixel{'s' if stride > 1 else ''} apart.")


@st.cache_data(show_spinner=False, max_entries=64)
def _figures(x, k, stride, padding, op, dilation) -> tuple[go.Figure, go.Figure, np.ndarray]:
    """The steps figure, the output figure and the overlap map: built once per setting (building the two figures
    is most of this section's server time: 0.07-0.17 s on 2 cores; a cached copy loads in ~0.02 s)."""
    steps = cb.transposed_conv_steps(x, k, stride, padding, op, dilation)
    overlap = cb.transposed_conv_steps(np.ones(x.shape), np.ones(k.shape), stride, padding, op, dilation).output
    return steps_figure(steps, stride, padding, op, dilation), output_figure(steps.output, overlap), overlap


def steps_figure(steps: cb.TransposedSteps, stride, padding, op, dilation) -> go.Figure:
    """Input, zero-inserted and padded maps in one figure, one colour scale (the values are the same)."""
    maps = [steps.input, steps.zero_inserted, steps.padded]
    net = [dilation * (n - 1) - padding for n in steps.kernel_flipped.shape]
    titles = [f"1. input {_shape(steps.input)}",
              f"2. zero-inserted {_shape(steps.zero_inserted)}<br><sup>{stride - 1} zero(s) between pixels</sup>",
              f"3. padded {_shape(steps.padded)}<br><sup>d(k−1)−p = {net[0]} per side"
              f"{f', +{op} bottom/right' if op else ''}; red: the zero-inserted map</sup>"]
    widths = [max(m.shape[1], 1) + 1.5 for m in maps]
    fig = make_subplots(1, 3, column_widths=widths, horizontal_spacing=0.05, subplot_titles=titles)
    show = max(steps.padded.shape) <= TEXT_MAX
    for i, m in enumerate(maps, 1):
        fig.add_trace(_heat(m, text=cell_text(m) if show else None, hover="col %{x}, row %{y}: %{z}",
                            font=_font(m)), 1, i)
    zi = steps.zero_inserted.shape
    if min(net) >= 0:  # where the zero-inserted map sits inside the padded one
        fig.add_shape(type="rect", x0=net[1] - 0.5, x1=net[1] + zi[1] - 0.5, y0=net[0] - 0.5,
                      y1=net[0] + zi[0] - 0.5, line=dict(color="#d62728", width=2, dash="dot"), row=1, col=3)
    _image_axes(fig, 3, x_title="column (pixel)", y_title="row (pixel)")
    vmax = max(float(np.abs(steps.input).max()), 1.0)
    rows = max(m.shape[0] for m in maps)
    fig.update_layout(title="Steps 1-3: a transposed convolution as zero insertion + padding",
                      coloraxis=dict(colorscale="Blues", cmin=0, cmax=vmax, colorbar=_colorbar("input value")),
                      height=int(np.clip(120 + 22 * rows, 300, 440)), margin=room(t=90, r=130))
    return fig


def _font(m) -> int:
    return 12 if max(m.shape) <= 10 else 10 if max(m.shape) <= 15 else 8


def output_figure(output: np.ndarray, overlap: np.ndarray) -> go.Figure:
    """The output beside its overlap map; same shape, so the axes are matched (zoom one, both follow)."""
    show = max(output.shape) <= TEXT_MAX
    fig = make_subplots(1, 2, horizontal_spacing=0.16, subplot_titles=[
        f"Step 4: output {_shape(output)}", "Overlap map: how many input pixels reach each output pixel"])
    fig.add_trace(_heat(output, "coloraxis", cell_text(output) if show else None, "col %{x}, row %{y}: %{z}",
                        font=_font(output)), 1, 1)
    fig.add_trace(_heat(overlap, "coloraxis2", cell_text(overlap) if show else None,
                        "col %{x}, row %{y}: %{z} contribution(s)", font=_font(output)), 1, 2)
    _image_axes(fig, 2, x_title="column (pixel)", y_title="row (pixel)", match=True)
    fig.update_layout(title="The result, and where stamps overlap",
                      coloraxis=dict(colorscale="Blues", colorbar=_colorbar("output value", x=0.43)),
                      coloraxis2=dict(colorscale="Viridis", cmin=0, colorbar=_colorbar("contributions", x=1.0)),
                      height=int(np.clip(130 + 24 * output.shape[0], 300, 460)), margin=room(t=60, l=45, r=120))
    return fig
