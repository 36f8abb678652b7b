"""Figure and table helpers shared by the Checkerboard Lab sections: heatmaps with square pixels, colour scales
and bars, cell labels, and the side-by-side power spectra used by the random and the trained decoders.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from aecore.viz import room

TEXT_MAX = 20  # write values into cells only when a map has at most this many rows and columns
UNEVEN, EVEN = "#d62728", "#2ca02c"


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
        # a matched panel follows the first one's ranges; plotly ignores (and warns about, ~2 ms a warning in the
        # browser) a scale anchor on an axis that also matches another
        anchor = {} if match and i > 1 else {"scaleanchor": f"x{sx}"}
        fig.layout[f"yaxis{sy}"].update(autorange="reversed", constrain="domain", constraintoward="top", **anchor,
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


def _shape(a) -> str:
    return f"({a.shape[0]}x{a.shape[1]})"


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
    fig.update_layout(title=title, height=340 if n <= 3 else 300, margin=room(t=80, l=90, r=130, b=20),
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
