"""Figures and pictures from arrays: pure functions, testable without a browser. Every chart has a title,
axis titles with units, and a legend or colour bar.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from .train import History

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def room(t: int = 50, l: int = 70, r: int = 10, b: int = 75) -> dict:  # noqa: E741  (plotly's own names)
    """Figure margins (px) with room for what plotly would otherwise push them out to fit: axis titles and tick
    labels (left, bottom), colour bars and side legends (right), legends below (bottom).

    Why preset: plotly draws a figure again whenever such a push grows a margin, and Streamlit already draws each
    figure twice on arrival. With room preset the Checkerboard Lab's first section draws its data 4 times per visit
    instead of 8 (browser time per visit ~1.2 -> ~1.0 s on a 2-core VM). Wider labels still fit: plotly then grows
    the margin as before. The values come from the margins plotly settled on for each figure in the app."""
    return dict(t=t, l=l, r=r, b=b)


def tile(images: np.ndarray, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """(N, C, H, W) -> one (C, H', W') grid, `nrow` images a row, laid out as torchvision's `make_grid` lays them
    (a single image comes back unpadded, as there); tests/test_latent_viz.py checks it against make_grid.

    Why not make_grid itself: importing torchvision imports torch._dynamo and triton, ~160 MB of the app server's
    1 GB (2026-12-03), for a few lines of layout."""
    n, c, h, w = images.shape
    if n == 1:
        return images[0]
    cols = min(nrow, n)
    rows = -(-n // cols)
    cells = np.full((rows * cols, c, h + padding, w + padding), pad_value, dtype=images.dtype)
    cells[:n, :, padding:, padding:] = images
    grid = cells.reshape(rows, cols, c, h + padding, w + padding).transpose(2, 0, 3, 1, 4)
    grid = grid.reshape(c, rows * (h + padding), cols * (w + padding))
    return np.pad(grid, ((0, 0), (0, padding), (0, padding)), constant_values=pad_value)


def to_uint8_image(images: torch.Tensor, nrow: int = 8, scale: int = 3, padding: int = 2) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (H', W') or (H', W', 3) uint8 grid, upscaled by an integer factor with
    nearest neighbour so small digits stay crisp instead of being blurred by the browser."""
    if images.ndim == 3:
        images = images.unsqueeze(1)
    grid = tile(images.detach().float().cpu().clamp(0, 1).numpy(), nrow=nrow, padding=padding, pad_value=1.0)
    arr = (grid.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    return arr[..., 0] if images.shape[1] == 1 else arr


def scale_for(height: int, target: int = 84) -> int:
    """Integer upscaling that brings an image of `height` pixels to about `target` pixels."""
    return max(1, round(target / max(height, 1)))


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (like TensorBoard), so early steps are not flattened."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i))
    return out


MAX_POINTS = 400


def loss_curves(history: History, title: str = "Training loss") -> go.Figure:
    """Per-step smoothed train loss, raw steps faint, and per-epoch test loss at the step the epoch ended."""
    fig = go.Figure()
    if history.step:
        # at most ~MAX_POINTS per trace: a live chart redrawn every second stays cheap for server and browser
        every = -(-len(history.step) // MAX_POINTS)
        steps, smoothed = history.step[::every], smooth(history.step_loss)[::every]
        fig.add_scatter(x=steps, y=history.step_loss[::every], mode="lines", name="train (per step)",
                        line=dict(color=PALETTE[0], width=1), opacity=0.25)
        fig.add_scatter(x=steps, y=smoothed, mode="lines", name="train (smoothed)",
                        line=dict(color=PALETTE[0], width=2))
    steps_at_epoch = history.epoch_step or history.epoch
    if history.test.get("loss"):
        fig.add_scatter(x=steps_at_epoch, y=history.test["loss"], mode="lines+markers", name="test (per epoch)",
                        line=dict(color=PALETTE[1], width=2))
    if history.val.get("loss"):
        fig.add_scatter(x=steps_at_epoch, y=history.val["loss"], mode="lines+markers", name="validation (per epoch)",
                        line=dict(color=PALETTE[4], width=2))
    for i, part in enumerate(["recon", "kl"]):
        if part in history.test and "kl" in history.test:
            fig.add_scatter(x=steps_at_epoch, y=history.test[part], mode="lines+markers", name=f"test {part}",
                            line=dict(color=PALETTE[2 + i], dash="dot"))
    fig.update_layout(title=title, xaxis_title="optimiser step", yaxis_title="loss (nats per image)",
                      legend=dict(orientation="h", y=-0.25), margin=room(l=80, b=130), height=360)
    return fig


def line_chart(x, series: dict[str, Sequence[float]], title: str, x_title: str, y_title: str,
               dashed: Sequence[str] = ()) -> go.Figure:
    fig = go.Figure()
    for i, (name, ys) in enumerate(series.items()):
        fig.add_scatter(x=list(x), y=list(ys), mode="lines+markers", name=name,
                        line=dict(color=PALETTE[i % 10], dash="dash" if name in dashed else "solid"))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=340,
                      legend=dict(orientation="h", y=-0.3), margin=room(b=130))
    return fig


# Creating a WebGL context costs a browser without a GPU (a VM, a cloud desktop, headless Chromium) ~0.35 s per chart
# (2-core Xeon, 2026-12-03: 0.36 s of the Latent page's 1.4 s); SVG draws a few thousand markers faster than that.
SVG_MAX_POINTS = 3000


def latent_scatter(points: np.ndarray, labels: np.ndarray | None, title: str, x_title: str, y_title: str,
                   class_names: Sequence[str] | None = None) -> go.Figure:
    """One trace per label; customdata carries the sample index for hover and selection. SVG up to SVG_MAX_POINTS,
    WebGL above (see there)."""
    fig = go.Figure()
    trace = go.Scatter if len(points) <= SVG_MAX_POINTS else go.Scattergl
    index = np.arange(len(points))
    groups = [(None, index)] if labels is None else [(c, index[labels == c]) for c in np.unique(labels)]
    for c, idx in groups:
        name = "codes" if c is None else (class_names[c] if class_names else str(c))
        fig.add_trace(trace(
            x=points[idx, 0], y=points[idx, 1], mode="markers", name=name, customdata=idx,
            marker=dict(size=5, color=PALETTE[int(c) % 10] if c is not None else PALETTE[0], opacity=0.75),
            hovertemplate=f"index %{{customdata}}<br>label {name}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, dragmode="lasso", height=480,
                      clickmode="event+select",  # a single click selects its point, not only a lasso
                      legend=dict(title="label", itemsizing="constant"), margin=room(r=80))
    return fig


def selected_indices(points: list[dict[str, Any]], figure: go.Figure | dict | None = None) -> list[int]:
    """Map a plotly selection back to sample indices.

    Prefers each point's customdata (our sample index), which Streamlit may deliver as 13, [13] or {"0": 13};
    otherwise uses (curve_number, point_index), because point_index counts within one trace.
    """
    out: list[int] = []
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, dict):
            cd = next(iter(cd.values()), None)
        elif isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is None and figure is not None:
            cd = _trace_customdata(figure, p.get("curve_number", 0), p.get("point_index", 0))
        if cd is not None:
            out.append(int(cd))
    return list(dict.fromkeys(out))


def _trace_customdata(figure, curve: int, point: int):
    """customdata of one point, from a go.Figure (arrays) or a plain dict figure (lists)."""
    trace = figure.data[curve] if hasattr(figure, "data") else figure["data"][curve]
    values = trace.customdata if hasattr(trace, "customdata") else trace.get("customdata")
    return None if values is None else values[point]


def heatmap(values: np.ndarray, title: str, x_title: str = "x (pixel)", y_title: str = "y (pixel)",
            colorbar: str = "value", colorscale: str = "Viridis", text: bool = False) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=values, colorscale=colorscale, colorbar=dict(title=colorbar),
                               texttemplate="%{z:.3g}" if text else None))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=360, margin=room(r=130))
    return fig
