"""A run's time-lapse (aecore.timelapse), on Inside the Models and under a finished run on Train: the same test
images reconstructed after each kept epoch, the same prior codes decoded (VAEs), and the test codes settling in an
animated scatter that plays in the browser (no rerun per frame)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
import streamlit as st

from aecore.timelapse import Timelapse
from aecore.viz import room
from ui.state import ModelEntry, shipped_models
from ui.text import plain
from ui.widgets import image_rows

PALETTE = qualitative.D3  # one colour per digit class (the ten D3 colours)


@st.fragment
def timelapse(entry: ModelEntry, data, key: str = "tl") -> None:
    tl = entry.checkpoint.timelapse
    if tl is None:
        _none_here()
        return
    epochs = tl.epochs.tolist()
    n_test = 0 if data is None else len(data.test_x)
    # the test images it follows are in the split shown (an uploaded checkpoint may come from another dataset)
    follows = n_test > max([-1, *tl.image_index.tolist(), *tl.code_index.tolist()])
    st.markdown(f"**{plain(entry.label)}** after each of {len(epochs)} epochs ({', '.join(map(str, epochs))}): "
                "the same test digits reconstructed, " + ("the same random codes decoded, " if tl.samples is not None
                                                          else "") + "and the codes of the same test digits.")
    st.markdown("**Reconstructions, epoch by epoch** (top: the test digits)")
    rows = {"test digits": data.test_x[tl.image_index]} if follows else {}
    rows.update({f"epoch {e}": tl.recon[i].float() / 255 for i, e in enumerate(epochs)})
    image_rows(rows, target=44)
    if tl.samples is not None:
        st.markdown(f"**Samples: the same {tl.samples.shape[1]} random codes decoded after each epoch**")
        image_rows({f"epoch {e}": tl.samples[i].float() / 255 for i, e in enumerate(epochs)}, target=36)
    labels = data.test_y[tl.code_index].numpy() if follows and data.test_y is not None else None
    st.plotly_chart(codes_figure(tl, labels, data.classes if follows else None), key=f"{key}_codes")
    st.caption("Press ▶ to play the epochs, or drag the slider. " + (
        "The code has more than two numbers: the points are drawn on the two main directions (principal axes) of "
        "the last epoch's codes, the same axes for every epoch." if tl.projected else
        "The axes stay fixed, so the points' drift is the model's.") +
        " Early on the digits share one blob; as the model learns, each kind of digit finds its own place.")


def codes_figure(tl: Timelapse, labels: np.ndarray | None, classes=None) -> go.Figure:
    """An animated scatter: one frame per kept epoch, one trace per digit class, axes fixed over all epochs."""
    codes = tl.codes.numpy()
    labels = np.zeros(codes.shape[1], dtype=int) if labels is None else labels
    groups = [(c, np.flatnonzero(labels == c)) for c in np.unique(labels)]
    name = (lambda c: classes[c] if classes else str(c)) if len(groups) > 1 else (lambda c: "test digits")

    def traces(i: int) -> list[go.Scatter]:
        return [go.Scatter(x=codes[i, idx, 0], y=codes[i, idx, 1], mode="markers", name=name(c),
                           marker=dict(color=PALETTE[int(c) % 10], size=5),
                           hovertemplate=f"{name(c)}: (%{{x:.2f}}, %{{y:.2f}})<extra></extra>") for c, idx in groups]

    epochs = tl.epochs.tolist()
    last = len(epochs) - 1
    lo, hi = codes.reshape(-1, 2).min(0), codes.reshape(-1, 2).max(0)
    pad = 0.05 * np.maximum(hi - lo, 1e-6)
    axis = "main direction" if tl.projected else "z"
    fig = go.Figure(data=traces(last), frames=[go.Frame(data=traces(i), name=str(e)) for i, e in enumerate(epochs)])
    play = dict(frame=dict(duration=600, redraw=False), transition=dict(duration=300), mode="immediate")
    fig.update_layout(
        title=f"Codes of {codes.shape[1]} test digits, epoch by epoch", height=520,
        xaxis=dict(title=f"{axis} 1 (code units)", range=[lo[0] - pad[0], hi[0] + pad[0]]),
        yaxis=dict(title=f"{axis} 2 (code units)", range=[lo[1] - pad[1], hi[1] + pad[1]]),
        margin=room(t=60, l=80, r=80, b=135),
        updatemenus=[dict(type="buttons", x=0, y=-0.12, xanchor="left", yanchor="top", direction="left",
                          buttons=[dict(label="▶ play", method="animate",
                                        args=[[str(e) for e in epochs], {**play, "fromcurrent": False}])])],
        sliders=[dict(active=last, x=0.12, y=-0.08, len=0.88, currentvalue=dict(prefix="epoch "),
                      steps=[dict(label=str(e), method="animate",
                                  args=[[str(e)], dict(frame=dict(duration=0, redraw=False), mode="immediate")])
                             for e in epochs])])
    return fig


def _none_here() -> None:
    with_one = [e.label for e in shipped_models().values() if e.checkpoint.timelapse is not None]
    st.info("This model has no time-lapse: it was trained before runs kept one. Every run on the Train page (and "
            "`python -m aecore train`) keeps one" + (f"; of the shipped models, these do: {', '.join(with_one)}"
                                                     if with_one else "") + ".", icon=":material/info:")
    st.page_link("pages/train.py", label="Train an MLP VAE with a 2-number code for 10 epochs and watch it learn",
                 icon=":material/model_training:", query_params={"preset": "mlp_vae", "latent": "2", "epochs": "10"})
