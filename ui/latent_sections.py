"""The Latent page's three sections, each a fragment: a control reruns only its own section (a new projection does
not redraw the samples, a new sample count does not redraw the scatter). The seed, which both the t-SNE layout and
the samples use, sits above them on the page (pages/latent.py), so changing it reruns all three."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from aecore.evaluation import nearest_with_shifts
from aecore.latent import interpolate, manifold_grid, prior_samples
from aecore.viz import latent_scatter, selected_indices
from ui import latentview as lv
from ui.widgets import image_grid, image_rows, set_url, url_value

LABELS = {"dims": "two latent dimensions", "pca": "PCA", "tsne": "t-SNE"}


@st.fragment
def codes_view(entry, data, codes: np.ndarray, seed: int, link) -> None:
    model, z_dim = entry.model, entry.checkpoint.spec.latent_dim
    methods = ["dims"] if z_dim <= 2 else ["pca", "tsne", "dims"]
    c1, c2, c3 = st.columns([2, 1, 1])
    if len(methods) == 1:  # a 2-D code is drawn as it is: no choice to offer
        method = "dims"
        c1.caption("A 2-D code needs no projection: each image is drawn at its two code values.")
    else:
        method = c1.radio("Projection", methods, methods.index(link("proj", methods[0], methods)), horizontal=True,
                          format_func=LABELS.get, key=f"proj_{entry.key}",
                          help="How the codes are drawn in 2-D. PCA: the two directions in which the codes vary most "
                               "(a linear view). t-SNE: a layout that keeps neighbours together (distances between "
                               "clusters mean little). Two latent dimensions: the raw coordinates.")
    dims = link("dims", (0, min(1, z_dim - 1)), cast=lambda t: tuple(int(v) for v in t.split(",")))
    if len(dims) != 2 or not all(0 <= d < z_dim for d in dims):
        dims = (0, min(1, z_dim - 1))
    if method == "dims" and z_dim > 2:
        dims = (c2.number_input("x: dimension", 0, z_dim - 1, dims[0], key=f"dim_x_{entry.key}"),
                c3.number_input("y: dimension", 0, z_dim - 1, dims[1], key=f"dim_y_{entry.key}"))
    set_url(proj=method, dims=f"{dims[0]},{dims[1]}" if method == "dims" else None)

    if z_dim == 4 and method != "dims":
        st.caption("With 4 latent dimensions, the lecture shows dims 0-1 and 2-3 side by side:")
        for col, pair in zip(st.columns(2), ((0, 1), (2, 3))):
            p = lv.projection(entry, codes, "dims", pair, seed)
            col.plotly_chart(latent_scatter(p.points, lv.labels(data), f"Codes, dims {pair[0]}-{pair[1]}",
                                            *p.axis_titles, data.classes), key=f"pair{pair}")

    proj = lv.projection(entry, codes, method, dims, seed)
    if "tsne" in methods and method != "tsne":
        lv.prefetch(codes, "tsne", dims, seed)  # likely the next click: ready by then
    title = {"pca": "Codes projected by PCA", "tsne": f"Codes embedded by t-SNE ({len(codes):,} points)"}.get(
        proj.method, f"Codes, {proj.method}")
    fig = latent_scatter(proj.points, lv.labels(data), title, *proj.axis_titles, data.classes)
    event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"), key="scatter")
    chosen = selected_indices(event.selection.points if event else [], fig)[:24]
    if chosen:
        st.markdown(f"**Selected {len(chosen)} point(s):** originals and what the decoder makes of their codes")
        image_rows({"original": data.test_x[chosen], "decoded": lv.decode(model, codes[chosen])}, target=48)
    else:
        st.caption("Click a point, or drag a lasso around a few, to see the images behind them.")
    if data.test_y is not None:
        chance = 1 / len(np.unique(lv.labels(data)))
        st.metric("Latent probe accuracy", f"{lv.probe(entry, data):.1%}", f"chance: {chance:.0%}", delta_color="off",
                  help="A logistic regression trained on the codes of the training split, scored on the test split: "
                       "how well a straight line through the code space separates the labels. Guessing scores the "
                       "chance level; higher means the code keeps what makes digits different.")


@st.fragment
def generating(entry, data, seed: int) -> None:
    model, z_dim = entry.model, entry.checkpoint.spec.latent_dim
    if not model.variational:
        set_url(grid=None, samples=None)
        st.info("A plain autoencoder has no prior to sample from: its codes can lie anywhere, so a random code "
                "usually decodes to nothing recognisable. Pick a VAE (its codes are pulled towards N(0, I)) to "
                "generate new images.", icon=":material/info:")
        return
    size = None
    if z_dim == 2:
        size = st.slider("Manifold grid size", 5, 25, url_value("grid", 15, cast=int, bounds=(5, 25)))
        images, values = manifold_grid(model, size)
        image_grid(images, nrow=size, target=40, caption=f"Decoded z on a {size}x{size} grid, evenly spaced in "
                   f"probability: z from {values[0]:.2f} to {values[-1]:.2f} (Kingma & Welling, fig. 4)")
    n = st.slider("Samples from the prior", 4, 24, url_value("samples", 12, cast=int, bounds=(4, 24)), 4)
    set_url(grid=size, samples=n)
    samples = prior_samples(model, n, seed)
    nb = nearest_with_shifts(samples, data.train_x, max_shift=2)
    image_rows({"sample z ~ N(0, I)": samples, "nearest training image": data.train_x[nb.shifted_index]}, target=48)
    st.caption(f"Pixel distance to the nearest training image, even allowing it to move by up to 2 pixels: median "
               f"{nb.shifted_distance.median():.2f} (a copy would be about 0), so these samples do not copy a "
               "training digit. Whether they look right, or cover every digit, is another question: see the "
               "Evaluation Lab.")


@st.fragment
def interpolation(entry, data, codes: np.ndarray) -> None:
    last = len(data.test_x) - 1
    i1, i2, i3 = st.columns(3)
    a = i1.number_input("From test image", 0, last, url_value("a", 0, cast=int, bounds=(0, last)))
    b = i2.number_input("To test image", 0, last, url_value("b", 1, cast=int, bounds=(0, last)))
    steps = i3.slider("Steps", 3, 15, url_value("steps", 9, cast=int, bounds=(3, 15)))
    set_url(a=a, b=b, steps=steps)
    z = torch.as_tensor(codes[[a, b]], dtype=torch.float32)
    image_rows({"from / to (the test images)": data.test_x[[a, b]],
                **{m: lv.decode(entry.model, interpolate(z[0], z[1], steps, m).numpy()) for m in ("linear", "slerp")}},
               target=48)
    st.caption("Linear: a straight line between the two codes. Slerp (spherical interpolation): an arc that keeps "
               "the codes at a typical distance from the centre, where a VAE's prior puts its mass.")
