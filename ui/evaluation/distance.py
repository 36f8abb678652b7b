"""Section 4 of the Evaluation Lab: pixel distance is not perceptual distance (Doersch 2016, fig. 3). A digit, the
same digit moved by one and two pixels, and the nearest digit of another class, with their L2 distances."""
from __future__ import annotations

import streamlit as st

from aecore import evaluation as ev
from ui.evaluation.common import data
from ui.widgets import image_grid, set_url, url_value


@st.cache_resource(show_spinner=False)
def striking_index() -> int:
    d = data()
    return ev.most_striking_shift(d.test_x, d.test_y.numpy())


@st.fragment
def pixel_distance() -> None:
    st.markdown("Sample checks and likelihoods often compare images pixel by pixel (**L2 distance**: the square "
                "root of the summed squared pixel differences). To a person a digit moved by a pixel is the same "
                "digit; to L2 it can be farther away than a different digit.")
    d = data()
    last = len(d.test_x) - 1
    index = st.number_input("Test digit", 0, last, url_value("digit", striking_index(), cast=int, bounds=(0, last)),
                            key="ev_digit", help="Opens on the test digit that shows the point most clearly.")
    set_url(digit=index)
    ex = ev.pixel_vs_shift(d.test_x, d.test_y.numpy(), int(index))
    x = d.test_x[int(index)]
    label, other_label = int(d.test_y[ex.index]), int(d.test_y[ex.other_index])
    shown = [(x, f"the {label}", "distance 0"),
             (ev.shift(x, 1, 0), "moved 1 pixel right", f"L2 distance {ex.shifted[1]:.2f}"),
             (ev.shift(x, 2, 0), "moved 2 pixels right", f"L2 distance {ex.shifted[2]:.2f}"),
             (d.test_x[ex.other_index], f"a {other_label} (test #{ex.other_index})",
              f"L2 distance {ex.other_distance:.2f}")]
    for col, (img, title, dist) in zip(st.columns(4), shown):
        with col:
            st.markdown(f"**{title}**")
            image_grid(img[None], nrow=1, target=112, caption=dist)
    closer = [s for s, v in ex.shifted.items() if v > ex.other_distance]
    if closer:
        st.caption(f"Takeaway: in pixels the {other_label} is closer to this {label} than the {label} itself moved by "
                   f"{' or '.join(str(s) for s in closer)} pixel(s). A model judged by pixel distance is pushed to "
                   "blur, and a check for copied images can miss a copy that moved.")
    else:
        st.caption(f"For this digit the moved copies stay closer than any other digit; try another, or the one the "
                   f"section opens on (#{striking_index()}).")
