"""Glue for the Checkerboard Lab: widgets, cached computations and plotly figures. The arithmetic lives in
aecore.checkerboard (pure, tested); this module only lays it out.

Four sections, each a function the page calls in order: calculator(), overlap_patterns(), random_decoders(),
trained_decoders().
"""
from __future__ import annotations

import os
import time

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from aecore import checkerboard as cb
from aecore.catalog import MODELS, get_preset
from aecore.checkpoints import Checkpoint
from aecore.metrics import psnr_per_image, reconstruct_batched
from aecore.models import UPSAMPLE_HELP, UPSAMPLE_MODES
from aecore.train import EpochEvent, History, StepEvent, TrainConfig, TrainingError, build_seeded, train
from aecore.viz import to_uint8_image
from ui import config
from ui.state import add_session_model, all_models, dataset, job_slots
from ui.widgets import fmt_seconds, image_rows

MARGIN = dict(t=60, b=10, l=10, r=10)
TEXT_MAX = 20  # write values into cells only when a map has at most this many rows and columns
UNEVEN, EVEN = "#d62728", "#2ca02c"


# ============================================================================ shared figure helpers
def cell_text(values: np.ndarray) -> np.ndarray:
    """Cell labels: integers as integers ("13", not "13.0"), other numbers with 2 significant digits."""
    v = np.asarray(values, dtype=np.float64)
    if np.all(np.isfinite(v)) and np.allclose(v, np.round(v)):
        return np.vectorize(lambda a: f"{int(round(a))}")(v)
    return np.vectorize(lambda a: f"{a:.2g}")(v)


def _heat(z, coloraxis="coloraxis", text=None, hover="x %{x}, y %{y}: %{z}", x=None, y=None, font=11):
    return go.Heatmap(z=z, x=x, y=y, coloraxis=coloraxis, text=text, texttemplate="%{text}" if text is not None
                      else None, textfont=dict(size=font), hovertemplate=hover + "<extra></extra>", xgap=0, ygap=0)


def _image_axes(fig: go.Figure, n: int, x_title="x (pixel)", y_title="y (pixel)", match=False) -> None:
    """Square pixels, y down like an image; axis titles on every panel (x) and the first one (y)."""
    for i in range(1, n + 1):
        sx, sy = ("" if i == 1 else str(i)), ("" if i == 1 else str(i))
        fig.layout[f"xaxis{sx}"].update(title=x_title, constrain="domain", constraintoward="center",
                                        showgrid=False, zeroline=False,
                                        **({"matches": "x"} if match and i > 1 else {}))
        fig.layout[f"yaxis{sy}"].update(autorange="reversed", scaleanchor=f"x{sx}", constrain="domain",
                                        constraintoward="top",
                                        showgrid=False, zeroline=False, title=y_title if i == 1 else None,
                                        **({"matches": "y"} if match and i > 1 else {}))


def scale(name: str) -> list:
    """A named plotly colour scale as explicit stops, with the first stop of Inferno and Magma, '#000004',
    replaced by '#000000': in the app, plotly.js drew '#000004' as a light pink instead of black."""
    import plotly.colors as pc

    return [[p, "#000000" if c.lower() == "#000004" else c] for p, c in pc.get_colorscale(name)]


def _colorbar(title: str, x: float | None = None, **kw) -> dict:
    bar = dict(title=dict(text=title, side="right"), thickness=12, len=0.9)
    if x is not None:
        bar.update(x=x, xanchor="left")
    return {**bar, **kw}


# ============================================================================ 1. calculator
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
LIMITS = {"cb_kernel": (1, 7), "cb_stride": (1, 4), "cb_padding": (0, 4), "cb_op": (0, 3), "cb_dilation": (1, 3),
          "cb_rows": (1, 12), "cb_cols": (1, 12)}


def _apply_preset() -> None:
    for key, value in zip(SLIDERS, PRESETS[st.session_state["cb_input"]]):
        st.session_state[key] = value


def calculator() -> None:
    st.markdown("A transposed convolution with stride *s* is the same as: **put s − 1 zeros between the input "
                "pixels, pad the border, and run an ordinary stride-1 convolution with the kernel rotated by "
                "180°**. Each input pixel stamps a weighted copy of the kernel onto the output, s pixels apart; "
                "where stamps overlap, their contributions add up.")
    if "cb_input" not in st.session_state:
        st.session_state["cb_input"] = "lecture_6x4"
        _apply_preset()
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
        seed = b.number_input("Seed", 0, 999, 0, key="cb_input_seed", disabled=kind != "random")
        rows = a.slider("Input height", *LIMITS["cb_rows"], key="cb_rows", disabled=fixed)
        cols = b.slider("Input width", *LIMITS["cb_cols"], key="cb_cols", disabled=fixed)
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
    steps = _steps(x, k, stride, padding, op, dilation)
    st.plotly_chart(steps_figure(steps, stride, padding, op, dilation), key="cb_steps")
    overlap = cb.transposed_conv_steps(np.ones(x.shape), np.ones(k.shape), stride, padding, op, dilation).output
    st.plotly_chart(output_figure(steps.output, overlap), key="cb_output")
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
def _steps(x, k, stride, padding, op, dilation) -> cb.TransposedSteps:
    return cb.transposed_conv_steps(x, k, stride, padding, op, dilation)


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
                      height=int(np.clip(120 + 22 * rows, 300, 440)), margin=dict(t=90, b=10, l=10, r=10))
    return fig


def _shape(a) -> str:
    return f"({a.shape[0]}x{a.shape[1]})"


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
                      height=int(np.clip(130 + 24 * output.shape[0], 300, 460)), margin=MARGIN)
    return fig


# ============================================================================ 2. overlap patterns
LECTURE_CASES = {(3, 2): "uneven: 1, 2, 1, 2", (4, 2): "even in the interior", (3, 1): "even, but no upsampling"}


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
    kernel = a.select_slider("Kernel size (stacked layers)", [2, 3, 4, 5], 3, key="cb_stack_kernel")
    stride = b.select_slider("Stride (stacked layers)", [1, 2, 3], 2, key="cb_stack_stride")
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
    shaded, bars coloured by their count (one colour scale for all)."""
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
            fig.add_trace(go.Bar(x=x, y=seg, marker=dict(color=seg, coloraxis="coloraxis"), showlegend=False,
                                 hovertemplate=f"k{k} s{s}<br>output pixel %{{x}}: %{{y}} contribution(s)"
                                               "<extra></extra>"), i, j)
            if p.period is not None:
                fig.add_vrect(x0=-0.5, x1=p.period - 0.5, fillcolor=UNEVEN, opacity=0.12, line_width=0,
                              row=i, col=j)
            fig.update_xaxes(title="output pixel (interior)" if i == len(kernels) else None, dtick=2, row=i, col=j)
            fig.update_yaxes(title="contributions" if j == 1 else None, range=[0, 5.4], dtick=1, row=i, col=j)
    for ann in fig.layout.annotations:
        ann.font = dict(size=12, color=EVEN if ": even" in ann.text else UNEVEN)
    fig.update_layout(title="Overlap along one axis, away from the border (shaded: one period of the pattern; "
                            "★ the lecture's cases)",
                      coloraxis=dict(colorscale="Viridis", cmin=0, cmax=5, colorbar=_colorbar("contributions")),
                      height=640, bargap=0.15, margin=dict(t=80, b=10, l=10, r=10))
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
                      height=330, margin=MARGIN)
    return fig


# ============================================================================ 3. random decoders
DISTILL_TITLES = {"deconv_last_two": "Transposed conv in the last two layers",
                  "deconv_last": "Transposed conv in the last layer",
                  "resize_all": "Resize-convolution everywhere"}
DISTILL_SHORT = {"deconv_last_two": "2 transposed layers", "deconv_last": "1 transposed layer",
                 "resize_all": "resize-conv only"}
N_DISTILL = 8


@st.cache_data(show_spinner=False, max_entries=32)
def _distill(config_name: str, seed: int, latent: str, n: int = N_DISTILL):
    """Outputs (n, 1, 64, 64) as numpy, their mean spectrum for display and the artifact score."""
    out = cb.distill_outputs(config_name, n=n, seed=seed, latent=latent, size=64)
    shown, fy, fx = cb.spectrum_for_display(cb.artifact_spectrum(out))
    return out.numpy(), shown, fy, fx, cb.artifact_score(out)


def random_decoders() -> None:
    st.markdown("Odena, Dumoulin & Olah (Distill 2016) show the pattern is there **before any training**: three "
                "decoders with random weights, 4x4 → 64x64 by four doublings, that differ only in where they "
                "use a transposed convolution (kernel 3, stride 2). Nothing has been learnt yet, so every "
                "regular pattern comes from the architecture.")
    st.session_state.setdefault("cb_seed", 0)
    a, b, c = st.columns([2.2, 1.4, 1], vertical_alignment="bottom")
    latent = a.radio("Latent input", ["random", "constant"], horizontal=True, key="cb_latent",
                     format_func={"random": "random z ~ N(0, I)", "constant": "constant z = 1"}.get)
    stretch = b.toggle("Stretch contrast", True, key="cb_stretch",
                       help="Random decoders output values close to 0.5 (a flat grey); stretching each image to "
                            "the full black-white range makes the pattern visible. Scores use the raw outputs.")
    if c.button("Reseed", icon=":material/casino:", help="New random weights (and latents) for all three."):
        st.session_state["cb_seed"] += 1
    seed = int(st.session_state["cb_seed"])
    results = {name: _distill(name, seed, latent) for name in cb.DISTILL_CONFIGS}
    for col, (name, (imgs, *_)) in zip(st.columns(3), results.items()):
        img = imgs[:1]
        lo, hi = float(img.min()), float(img.max())
        if stretch and hi > lo:
            img = (img - lo) / (hi - lo)
        col.markdown(f"**{DISTILL_TITLES[name]}**")
        col.image(to_uint8_image(torch.from_numpy(img), nrow=1, scale=4, padding=0),
                  caption=f"{name}: values {lo:.2f}–{hi:.2f}")
    st.caption(f"Weight seed {seed}. One 64x64 output each, enlarged 4x with nearest neighbour (no smoothing); "
               f"the spectra and scores below average {N_DISTILL} latents.")
    spectra = {DISTILL_SHORT[n]: (r[1], r[2], r[3]) for n, r in results.items()}
    st.plotly_chart(spectra_figure(spectra, "Mean power spectrum of the outputs (DC at the centre)"),
                    key="cb_distill_spectra")
    st.dataframe([{"decoder": name, "what it does": DISTILL_TITLES[name],
                   "artifact score": round(results[name][4], 2)} for name in cb.DISTILL_CONFIGS],
                 hide_index=True, column_config=_score_help())
    st.caption("A checkerboard of period 2 is a spike at ±0.5 cycles/pixel (the corners and edge midpoints of "
               "the spectrum); period 4 adds spikes at ±0.25. The artifact score is the natural log of how far "
               "those bins stand above their neighbours (averaged over the period-2 and period-4 bins): about 0 "
               "for smooth images, 5+ for a strong checkerboard.")


def _score_help(text: str = "ln(power at the period-2 and period-4 frequencies / power of the bins around "
                                 "them); 0 = no periodic artifact") -> dict:
    return {"artifact score": st.column_config.NumberColumn(help=text, format="%.2f")}


def _panels_width(n: int) -> int | str:
    """A fixed width for a row of n square panels, so one or two panels are not stretched across the page."""
    return "stretch" if n >= 4 else 200 * n + 190


def spectra_figure(spectra: dict, title: str) -> go.Figure:
    """log10 power spectra side by side, one colour scale, axes matched: zooming one zooms all."""
    n = len(spectra)
    fig = make_subplots(1, n, horizontal_spacing=0.04 if n > 3 else 0.05,
                        subplot_titles=[_wrap(t) for t in spectra])
    lo = min(float(np.percentile(s[0], 5)) for s in spectra.values())
    hi = max(float(s[0].max()) for s in spectra.values())
    for i, (shown, fy, fx) in enumerate(spectra.values(), 1):
        fig.add_trace(go.Heatmap(z=shown, x=fx, y=fy, coloraxis="coloraxis", hovertemplate=(
            "f<sub>x</sub> %{x:.3f}, f<sub>y</sub> %{y:.3f} cycles/pixel<br>log10 power %{z:.2f}<extra></extra>")),
            1, i)
    _image_axes(fig, n, x_title="f<sub>x</sub> (cycles/pixel)", y_title="f<sub>y</sub> (cycles/pixel)", match=True)
    _hide_inner_y(fig, n)
    fig.update_yaxes(autorange=None, range=[0.5 + 0.5 / len(fy), -0.5 - 0.5 / len(fy)])
    fig.update_xaxes(dtick=0.25 if n <= 3 else 0.5, tickangle=0)
    fig.update_yaxes(dtick=0.25)
    fig.update_layout(title=title, height=340 if n <= 3 else 300, margin=dict(t=80, b=10, l=10, r=10),
                      coloraxis=dict(colorscale=scale("Inferno"), cmin=lo, cmax=hi,
                                     colorbar=_colorbar("log10 power (share of total)")))
    return fig


def _hide_inner_y(fig: go.Figure, n: int) -> None:
    """Matched panels share the y scale: tick labels on the first one only, so they cannot collide."""
    for i in range(2, n + 1):
        fig.layout[f"yaxis{i}"].update(showticklabels=False)


def _wrap(title: str, width: int = 30) -> str:
    if len(title) <= width:
        return title
    cut = title.rfind(" ", 0, width)
    return title[:cut] + "<br>" + title[cut + 1:] if cut > 0 else title


# ============================================================================ 4. trained decoders
# The set this page can train by itself: the conv AE (its decoder ends in the upsampling layer, so what that
# layer does shows), batch 32 so that 2 epochs are 250 steps. Measured on 2 idle CPU cores: after 2 epochs the
# transposed k3 decoder scores about 2.4 (period 2) at 16.5 dB PSNR, the other four about 0. QUICK_MAX_STEPS
# (None here) only exists so a test can run the whole flow in seconds.
QUICK_PRESET, QUICK_DATASET, QUICK_EPOCHS, QUICK_BATCH, QUICK_MAX_STEPS = "conv_ae", "mnist-5k", 2, 32, None
# Seconds per epoch of that recipe on the bundled 4,000 images (test pass included), 2 idle CPU cores, measured:
# resize and sub-pixel decoders run their last 3x3 convolution at full resolution, hence slower.
SECONDS_PER_EPOCH = {"transposed": 7.0, "transposed4": 7.5, "nearest": 10.0, "bilinear": 10.0, "subpixel": 9.0}
N_TEST, N_SCORE, CROP = 8, 100, 14


def _quick_config() -> TrainConfig:
    return get_preset(QUICK_PRESET).config(epochs=min(QUICK_EPOCHS, config.MAX_EPOCHS), batch_size=QUICK_BATCH,
                                           max_steps=QUICK_MAX_STEPS)


def _quick_recipe(shape) -> tuple:
    """The comparison recipe of models trained by the button below (so they group with identical ones)."""
    return cb.recipe_of(QUICK_PRESET, QUICK_DATASET, get_preset(QUICK_PRESET).spec(shape), _quick_config())


def _group_label(group: cb.UpsampleGroup) -> str:
    preset = MODELS.get(group.model_name)
    title = preset.title if preset else group.model_name
    cfg = group.config
    extra = "".join([f", batch {cfg['batch_size']}" if cfg["batch_size"] != 100 else "",
                     f", lr {cfg['lr']:g}" if cfg["lr"] != 1e-3 else "",
                     f", {cfg['max_steps']} steps at most" if cfg["max_steps"] else ""])
    return (f"{title} z={group.spec['latent_dim']} · {group.dataset} · {cfg['epochs']} epoch(s){extra}, seed "
            f"{cfg['seed']} — {len(group.members)} of {len(UPSAMPLE_MODES)} upsamplings")


def trained_decoders() -> None:
    st.markdown("Random weights are the starting point; training can learn to hide the pattern, or not. Here "
                "are decoders that are **identical except for the upsampling layers** (same architecture "
                "otherwise, same data, same seed, same training), reconstructing the same test images. Where "
                "the upsampling sits matters: the conv AE's decoder *ends* in an upsampling layer, while the "
                "lecture's conv VAE follows its last one with a 4x4 convolution that smooths over the pattern.")
    entries = all_models()
    data_shape = (1, 28, 28)
    quick = _quick_recipe(data_shape)
    groups = cb.group_by_upsampling((k, e.checkpoint) for k, e in entries.items())
    if not any(g.recipe == quick for g in groups):
        groups.append(cb.UpsampleGroup(quick, {}))
    # the fullest set first; among equals the conv AE (its decoder ends in the upsampling layer, so the pattern
    # shows most), then the lecture's conv VAE, on the bundled digits, then the set this page can train
    rank = {"conv_ae": 0, "conv_vae": 1}
    groups.sort(key=lambda g: (-len(g.members), rank.get(g.model_name, 2), g.dataset != QUICK_DATASET,
                               g.recipe != quick))
    ids = [repr(g.recipe) for g in groups]
    by_id = dict(zip(ids, groups))
    wanted = st.session_state.get("cb_group")
    group_id = st.selectbox("Models compared", ids, index=ids.index(wanted) if wanted in ids else 0,
                            format_func=lambda i: _group_label(by_id[i]),
                            help="Models in one set share everything but the decoder's upsampling.")
    st.session_state["cb_group"] = group_id
    group = by_id[group_id]
    missing = group.missing(UPSAMPLE_MODES)
    if missing:
        quick_group = next(g for g in groups if g.recipe == quick)
        _offer_training(group, missing, quick, quick_group.missing(UPSAMPLE_MODES))
    if len(group.members) == 0:
        return
    _compare(group, entries)


def _offer_training(group: cb.UpsampleGroup, missing: list[str], quick: tuple, quick_missing: list[str]) -> None:
    cfg = group.config
    names = ", ".join(f"**{m}**" for m in missing)
    with st.container(border=True):
        st.markdown(f"Missing from this set: {names}.")
        a, b = st.columns([3, 2], vertical_alignment="center")
        with a:
            params = {"preset": group.model_name, "dataset": group.dataset, "latent": group.spec["latent_dim"],
                      "epochs": cfg["epochs"], "seed": cfg["seed"], "noise": cfg["noise"]}
            st.page_link("pages/train.py", label="Train one on the Train page with these settings",
                         icon=":material/model_training:", query_params=params)
            extra = []
            if cfg["batch_size"] != 100:
                extra.append(f"batch size {cfg['batch_size']}")
            if cfg["lr"] != 1e-3:
                extra.append(f"learning rate {cfg['lr']:g}")
            st.caption("There, set **Decoder upsampling** to one of: "
                       + ", ".join(f"{m} ({UPSAMPLE_HELP[m]})" for m in missing)
                       + (f"; also set {', '.join(extra)}" if extra else "") + ". It appears here when done.")
        with b:
            _train_here_button(quick_missing, switch_to=None if group.recipe == quick else repr(quick))


def _busy_factor() -> float:
    """How much slower than idle this machine is right now: 1-minute load average per core, at least 1."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


def _estimate_seconds(mode: str) -> float:
    """Seconds to train one model of the quick set here and now."""
    return SECONDS_PER_EPOCH.get(mode, 14.0) * _quick_config().epochs * _busy_factor()


class _InlineJob:
    """What the server-wide job cap (ui.state.JobSlots) needs to count a run that happens inline."""

    def __init__(self):
        self.finished = False

    def snapshot(self):
        return self


def _train_here_button(missing: list[str], switch_to: str | None = None) -> None:
    """Train the quick set's missing models right here; `switch_to`: show that set afterwards (another set is
    on screen, and this button offers the quick set instead)."""
    if not missing:  # the quick set is complete already: just offer to show it
        if switch_to:
            st.button("Show the complete set trained here", key="cb_to_quick", icon=":material/swap_horiz:",
                      on_click=st.session_state.update, kwargs={"cb_group": switch_to})
        return
    each = float(np.mean([_estimate_seconds(m) for m in missing]))
    what = (f"Train the missing {len(missing)} here" if switch_to is None
            else f"Or train a complete set of {len(missing)} here")
    cfg = _quick_config()
    clicked = st.button(f"{what} (about {fmt_seconds(each)} each)", type="primary", icon=":material/play_arrow:",
                        key="cb_train_here",
                        help=f"The conv AE (z = 32) on the bundled digits, {cfg.epochs} epochs with batch size "
                             f"{cfg.batch_size}, seed 0: one model per upsampling. The page waits until they are "
                             "done; the estimate allows for how busy the server is right now.")
    if not clicked:
        return
    from ui import training

    if training.is_running():
        st.warning("A training run from the Train page is still going: wait for it or stop it first.")
        return
    data = dataset(QUICK_DATASET)
    if data is None:
        return
    job = _InlineJob()
    if not job_slots().try_acquire(job):
        st.warning(f"The server is busy ({config.MAX_CONCURRENT_JOBS} training runs going); try again in a "
                   "minute.")
        return
    bar = st.progress(0.0, text="Starting…")
    try:
        for i, mode in enumerate(missing):
            _train_one(mode, data, lambda f, text, i=i: bar.progress((i + f) / len(missing),
                                                                   text=f"{i + 1}/{len(missing)} {mode}: {text}"))
    except TrainingError as e:
        st.error(f"Training stopped: {e}")
        return
    finally:
        job.finished = True
    if switch_to:
        st.session_state["cb_group"] = switch_to
    st.rerun()


def _train_one(mode: str, data, report) -> None:
    preset = get_preset(QUICK_PRESET)
    cfg = _quick_config()
    model = build_seeded(preset.spec(data.shape, None, mode), cfg.seed)
    history, start = History(), time.perf_counter()
    for event in train(model, data.train_x, data.test_x, cfg):
        history.record(event)
        if isinstance(event, StepEvent) and (event.step % 5 == 0 or event.step == event.total_steps):
            report(event.step / event.total_steps, f"step {event.step}/{event.total_steps}")
        elif isinstance(event, EpochEvent):
            report(event.epoch / event.epochs,
                   f"epoch {event.epoch}/{event.epochs}, test loss {event.test.get('loss', float('nan')):.1f}")
    model = model.cpu().eval()
    extra = {"source": "checkerboard lab", "train_seconds": round(time.perf_counter() - start, 1)}
    add_session_model(Checkpoint(model, QUICK_PRESET, QUICK_DATASET, cfg, history, {}, extra))


def _reconstruct(entry, x: torch.Tensor) -> torch.Tensor:
    """Reconstructions of x, memoised per visitor (models in session_state are not hashable for st.cache_*)."""
    memo = st.session_state.setdefault("cb_recon_memo", {})
    key = (entry.key, id(entry.checkpoint.model), x.shape[0], float(x.sum()))
    if key not in memo:
        if len(memo) > 20:
            memo.clear()
        memo[key] = reconstruct_batched(entry.model, x)[1]
    return memo[key]


def _compare(group: cb.UpsampleGroup, entries: dict) -> None:
    data = dataset(group.dataset)
    if data is None:
        return
    modes = [m for m in UPSAMPLE_MODES if m in group.members]
    a, b, c, d = st.columns([1.3, 1.3, 1.6, 2], vertical_alignment="bottom")
    first = int(a.number_input("First test image", 0, len(data.test_x) - N_TEST, 0, step=N_TEST,
                               key="cb_first"))
    pick = b.slider("Close-up of image", 1, N_TEST, 1, key="cb_pick")
    where = c.radio("Close-up of", ["digit", "corner"], horizontal=True, key="cb_crop_at",
                    format_func={"digit": "the digit", "corner": "a corner"}.get,
                    help="The digit's centre, or the top-left corner, where the background shows any pattern.")
    source = d.radio("Spectrum of", ["output", "difference"], horizontal=True, key="cb_spec_of",
                     format_func={"output": "the outputs", "difference": "output − original"}.get)
    start = min(first, len(data.test_x) - N_SCORE)
    x_all, x = data.test_x[start: start + N_SCORE], data.test_x[first: first + N_TEST]
    outs = {m: _reconstruct(entries[group.members[m]], x_all) for m in modes}
    shown = {m: _reconstruct(entries[group.members[m]], x) for m in modes}

    st.markdown(f"**Test images {first}–{first + N_TEST - 1} and their reconstructions**")
    image_rows({"original": x, **{m: shown[m] for m in modes}}, target=56)

    i = pick - 1
    top, left = cb.center_of_mass_crop(x[i, 0].numpy(), CROP) if where == "digit" else (0, 0)
    st.markdown(f"**Close-up of image {first + i}**, rows {top}–{top + CROP - 1}, columns {left}–{left + CROP - 1}, "
                "nearest-neighbour enlarged")
    panels = {"original": x[i:i + 1], **{m: shown[m][i:i + 1] for m in modes}}
    scale = max(4, min(12, 124 // CROP))
    for col, (name, img) in zip(st.columns(1 + len(UPSAMPLE_MODES)), panels.items()):
        crop = img[..., top:top + CROP, left:left + CROP]
        col.image(to_uint8_image(crop, nrow=1, scale=scale, padding=0), caption=name)

    diffs = {m: (shown[m][i, 0] - x[i, 0]).numpy() for m in modes}
    st.plotly_chart(difference_figure(diffs, first + i), key="cb_diff", width=_panels_width(len(diffs)))
    spectra, rows = {}, []
    for m in modes:
        imgs = outs[m] if source == "output" else outs[m] - x_all
        spectra[m] = cb.spectrum_for_display(cb.artifact_spectrum(imgs))
        rows.append({"upsampling": m, "how": UPSAMPLE_HELP[m],
                     "artifact score": round(cb.artifact_score(outs[m], periods=(2,)), 2),
                     "score of output − original": round(cb.artifact_score(outs[m] - x_all, periods=(2,)), 2),
                     "PSNR (dB)": round(float(psnr_per_image(outs[m], x_all).mean()), 2)})
    what = "outputs" if source == "output" else "differences (output − original)"
    st.plotly_chart(spectra_figure(spectra, f"Mean power spectrum of the {what}, {len(x_all)} test images"),
                    key="cb_trained_spectra", width=_panels_width(len(spectra)))
    st.dataframe(rows, hide_index=True, column_config=_score_help(
        "ln(power at the period-2 frequencies, ±0.5 cycles/pixel / power of the bins around them); 0 = none"))
    st.caption(f"Scores and PSNR over {len(x_all)} test images. Here the score looks for period 2 only: these "
               "decoders end in one stride-2 layer, and on 28x28 images the period-4 bins (±0.25 cycles/pixel) "
               "sit where the digits' own strokes have most of their energy. The difference image shows "
               "where the pattern lives: in the background and along the strokes.")


def difference_figure(diffs: dict, index: int) -> go.Figure:
    """output − original per model, diverging colours centred on 0, one scale, axes matched."""
    n = len(diffs)
    fig = make_subplots(1, n, horizontal_spacing=0.03, subplot_titles=list(diffs))
    lim = max(max(float(np.abs(d).max()) for d in diffs.values()), 1e-6)
    for i, d in enumerate(diffs.values(), 1):
        fig.add_trace(_heat(d, hover="col %{x}, row %{y}: %{z:+.3f}"), 1, i)
    _image_axes(fig, n, x_title="x (pixel)", y_title="y (pixel)", match=True)
    _hide_inner_y(fig, n)
    fig.update_layout(title=f"Output − original, test image {index}",
                      coloraxis=dict(colorscale="RdBu_r", cmin=-lim, cmax=lim,
                                     colorbar=_colorbar("output − original<br>(red: too bright)")),
                      height=300 if n > 2 else 360, margin=dict(t=80, b=10, l=10, r=10))
    return fig
