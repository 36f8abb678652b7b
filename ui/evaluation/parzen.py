"""Section 3 of the Evaluation Lab: Parzen-window (Gaussian kernel density) log-likelihoods of the test digits under
real training digits, k-means centroids, shifted digits and VAE samples, each with the bandwidth that does best on
a validation split (Theis et al. 2016, table 1)."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
import torch

from aecore import evaluation as ev
from aecore.latent import prior_samples
from aecore.viz import room
from ui.evaluation.common import data, memoize, model_id, vaes
from ui.text import plain_html
from ui.widgets import set_url, url_value

SIZES = (100, 250, 500)
POOL = 3000  # training digits the sample sets come from; the rest of the training split chooses the bandwidth
SOURCE = {"real": "243", "kmeans": "313"}  # Theis et al. 2016, table 1 (MNIST, 10,000 samples each)


@st.cache_resource(show_spinner=False, max_entries=6)
def references(n: int, seed: int) -> dict:
    """The sample sets that are not models, and the validation digits: the same for every visitor."""
    train = data().train_x
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    pool, validation = train[perm[:POOL]], train[perm[POOL:]]
    real = pool[:n]
    return {"validation": validation, "sets": {
        "real": ("training digits: samples of the true distribution", real),
        "kmeans": (f"k-means centroids of {POOL:,} training digits", ev.kmeans_centroids(pool, n, seed)),
        "shifted": ("the same training digits, moved 1 pixel right", ev.shift(real, 1, 0))}}


def scores(n: int, seed: int) -> list[dict]:
    with st.spinner(f"Fitting k-means with {n} centroids and choosing bandwidths (a few seconds, once)…"):
        ref = references(n, seed)
    test, validation = data().test_x, ref["validation"]
    rows = []
    for key, (name, centres) in ref["sets"].items():
        r = memoize(("parzen", key, n, seed), lambda: ev.parzen_score(name, centres, validation, test))
        rows.append({"key": key, "result": r})
    for entry in vaes().values():
        if entry.checkpoint.spec.is_conv and entry.checkpoint.spec.upsample != "transposed":
            continue  # the Checkerboard Lab's upsampling variants of the z = 2 conv VAE: the same story again

        def compute(entry=entry):
            samples = prior_samples(entry.model, n, seed)
            return ev.parzen_score(f"samples of {entry.label}", samples, validation, test)

        rows.append({"key": entry.key, "result": memoize(("parzen", model_id(entry), n, seed), compute)})
    return rows


def figure(rows: list[dict]) -> go.Figure:
    rows = sorted(rows, key=lambda r: r["result"].mean)
    colour = {"real": "#2ca02c", "kmeans": "#d62728", "shifted": "#ff7f0e"}
    names = [plain_html(r["result"].name) for r in rows]
    fig = go.Figure(go.Bar(
        x=[r["result"].mean for r in rows], y=names,
        orientation="h", error_x=dict(array=[2 * r["result"].sem for r in rows]),
        marker_color=[colour.get(r["key"], "#1f77b4") for r in rows],
        hovertemplate="%{y}: %{x:.1f} nats<extra></extra>"))
    fig.update_layout(title="Parzen-window log-likelihood of the test digits (higher looks better; bars ± 2 s.e.)",
                      xaxis_title="mean log-likelihood per test digit (nats)", yaxis_title=None,
                      height=80 + 34 * len(rows),
                      margin=room(t=60, l=10 + 5 * max(len(n) for n in names)))  # ~5 px per character of a name
    return fig


@st.fragment
def parzen_table() -> None:
    st.markdown("Models that only make samples (GANs, for instance) have no likelihood to report, so papers used to "
                "put a **Parzen window** (a small Gaussian blob, width σ, on every sample) around their samples and "
                "report the test digits' log-likelihood under that. Each row below gets its own best σ, chosen on "
                "held-out training digits.")
    c1, c2, _ = st.columns([1, 1, 2])
    n = c1.select_slider("Samples per set", SIZES, url_value("pzn", 500, SIZES, int),
                         help="How many samples (or centroids) each Parzen window is built from.")
    seed = c2.number_input("Seed", 0, 999, url_value("pzseed", 0, cast=int, bounds=(0, 999)), key="ev_pzseed",
                           help="Which training digits are drawn, where k-means starts, which codes are sampled.")
    set_url(pzn=n, pzseed=seed)
    rows = scores(n, int(seed))
    st.plotly_chart(figure(rows), key="ev_parzen")
    table = [{"samples from": r["result"].name,  # a dataframe cell shows text as text
              "log-likelihood (nats)": f"{r['result'].mean:.1f} ± {r['result'].sem:.1f}",
              "bandwidth σ": f"{r['result'].sigma:.3f}", "source's value": SOURCE.get(r["key"], "–")}
             for r in sorted(rows, key=lambda r: -r["result"].mean)]
    st.dataframe(table, hide_index=True, column_config={
        "log-likelihood (nats)": st.column_config.TextColumn(help="Mean over the 1,000 test digits ± standard error; "
                                                             "higher means the blobs sit closer to the test digits."),
        "source's value": st.column_config.TextColumn(help="Theis, van den Oord & Bethge 2016, table 1: full MNIST, "
                                                      "10,000 samples; not comparable in size, only in order.")})
    by = {r["key"]: r["result"].mean for r in rows}
    verdict = ("beat" if by["kmeans"] > by["real"] else "did not beat")
    st.caption(f"Takeaway: here k-means centroids ({by['kmeans']:.0f} nats) {verdict} real digits ({by['real']:.0f}); "
               f"in the source k-means scored 313 against the true distribution's 243. A blurry average sits close to "
               f"many test digits at once and a shift of one pixel costs {by['real'] - by['shifted']:.0f} nats, so a "
               "Parzen score rewards blur and punishes harmless changes: it does not say which model is better.")
