"""Evaluation Lab: how to judge a generative model, and how not to (the source's appendix, after Theis, van den
Oord & Bethge 2016 and Doersch 2016). Thin: the maths is in aecore.divergences and aecore.evaluation, the layout in
ui.evaluation (one fragment per section, so a control reruns only its own section)."""
import streamlit as st

from ui.evaluation import distance, likelihood, memorisation, objectives, parzen, ring
from ui.evaluation.common import data
from ui.widgets import require_app_frame

require_app_frame()
st.title("Evaluation Lab")
st.caption("How to judge a generative model, and how not to: real computations on the bundled digits and the "
           "shipped models. After Theis, van den Oord & Bethge, *A note on the evaluation of generative models* "
           "(2016), and Doersch, *Tutorial on Variational Autoencoders* (2016).")
if data() is None:
    st.stop()

st.header("1 · What the objective does to the fit", divider="gray")
objectives.objective_fits()
st.header("2 · Log-likelihood is the honest number", divider="gray")
likelihood.likelihood_curve()
st.header("3 · Parzen windows mislead", divider="gray")
parzen.parzen_table()
st.header("4 · Pixel distance is not perceptual distance", divider="gray")
distance.pixel_distance()
st.header("5 · Memorisation and mode collapse", divider="gray")
memorisation.samples_check()
st.header("6 · From a Gaussian to anything", divider="gray")
ring.gaussian_to_ring()
