"""Section 5 of the Evaluation Lab: memorisation and mode collapse. Prior samples beside their nearest training
images, in plain pixel distance and allowing small shifts (with a planted shifted copy the plain check misses), and
the share of each digit among many samples, counted by a classifier trained on the bundled training split."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from aecore import evaluation as ev
from aecore.latent import prior_samples
from aecore.viz import room
from ui.evaluation.common import data, digit_classifier, memoize, model_id, pick_vae, vaes
from ui.text import plain_html
from ui.widgets import image_rows, set_url, url_value

SHOWN, MAX_SHIFT = 8, 2
COUNTS = (200, 500, 1000, 2000)
COMPARED = ("shipped:conv_vae_z2", "shipped:conv_vae_z4", "shipped:conv_vae_z20")  # z = 2 against larger codes


def nearest(entry, seed: int):
    """SHOWN - 1 prior samples and, last, a training digit moved 2 px (a planted copy); their nearest neighbours."""
    def compute():
        train = data().train_x
        planted = ev.shift(train[seed % len(train)][None], MAX_SHIFT, 0)
        queries = torch.cat([prior_samples(entry.model, SHOWN - 1, seed), planted])
        return queries, ev.nearest_with_shifts(queries, train, MAX_SHIFT)

    return memoize(("nearest", model_id(entry), seed), compute)


def shares(entry, n: int, seed: int) -> np.ndarray:
    clf, _ = digit_classifier()
    return memoize(("coverage", model_id(entry), n, seed), lambda: ev.coverage(
        clf.predict(prior_samples(entry.model, n, seed).flatten(1).numpy())))


COLOURS = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")  # grey: the real digits; then one per model


def coverage_figure(rows: dict[str, np.ndarray]) -> go.Figure:
    fig = go.Figure([go.Bar(x=list(range(10)), y=100 * share, name=plain_html(name), marker_color=colour,
                            hovertemplate="digit %{x}: %{y:.1f} %<extra>" + plain_html(name) + "</extra>")
                     for (name, share), colour in zip(rows.items(), COLOURS)])
    fig.add_hline(y=10, line_dash="dot", annotation_text="10 %: every digit equally often")
    fig.update_layout(title="Which digits the samples show, as counted by the classifier", barmode="group",
                      xaxis=dict(title="digit", tickvals=list(range(10))), yaxis_title="share of samples (%)",
                      height=380, legend=dict(orientation="h", y=-0.25), margin=room(t=60, b=100))
    return fig


@st.fragment
def samples_check() -> None:
    st.markdown("Good-looking samples prove little if they are **copies of training images** (memorisation) or if "
                "the model **only ever draws some digits** (mode collapse). The usual check puts each sample beside "
                "its nearest training image; but nearest in pixels misses a copy that has moved.")
    c1, c2, c3 = st.columns([2, 1, 1])
    entry = pick_vae("VAE to check", "memmodel", where=c1)
    if entry is None:
        return
    n = c2.select_slider("Samples counted", COUNTS, url_value("memn", 1000, COUNTS, int),
                         help="How many prior samples the digit count below uses.")
    seed = c3.number_input("Seed", 0, 999, url_value("memseed", 0, cast=int, bounds=(0, 999)), key="ev_memseed",
                           help="Which codes are drawn from the prior (and which training digit is planted).")
    set_url(memmodel=entry.key, memn=n, memseed=seed)
    seed = int(seed)
    queries, nb = nearest(entry, seed)
    train = data().train_x
    image_rows({"sample (last: a planted copy)": queries,
                "nearest training image, in pixels": train[nb.plain_index],
                f"nearest allowing shifts of up to {MAX_SHIFT} px": train[nb.shifted_index]}, target=52)
    st.dataframe([{"sample": "planted copy" if i == SHOWN - 1 else f"sample {i + 1}",
                   "pixel distance to nearest": f"{nb.plain_distance[i]:.2f}",
                   f"distance allowing shifts ≤ {MAX_SHIFT} px": f"{nb.shifted_distance[i]:.2f}",
                   "best shift (dx, dy)": str(nb.shift[i])} for i in range(SHOWN)], hide_index=True)
    st.caption(f"The planted copy is a training digit moved {MAX_SHIFT} px: in plain pixels its nearest training image "
               f"is {nb.plain_distance[-1]:.2f} away, as far as a new image; allowing shifts finds the original at "
               f"{nb.shifted_distance[-1]:.2f}. The samples' own distances (median "
               f"{nb.shifted_distance[:-1].median():.2f} with shifts) say they are not copies of a training "
               "digit, even moved; they do not say the samples are good or varied.")

    clf, accuracy = digit_classifier()
    rows = {"real test digits (true labels)": ev.coverage(data().test_y.numpy())}
    models = vaes()
    for key in dict.fromkeys([entry.key, *COMPARED]):
        if key in models:
            rows[models[key].label] = shares(models[key], n, seed)
    st.plotly_chart(coverage_figure(rows), key="ev_coverage")
    worst = min(rows[entry.label]) * 100
    st.caption(f"Digits counted by logistic regression on pixels, trained on the 4,000 training digits: "
               f"{accuracy:.1%} right on the test digits, so a few percent of every bar is the classifier's error. "
               f"The rarest digit among this model's samples: {worst:.1f} % (uniform is 10 %). A model that drops a "
               "digit shows a bar near 0; compare z = 2 with larger codes.")
