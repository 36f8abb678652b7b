"""Evaluation Lab: how to judge a generative model, and how not to (the source's appendix, after Theis, van den
Oord & Bethge 2016 and Doersch 2016). Thin: the maths is in aecore.divergences and aecore.evaluation, the layout in
ui.evaluation (one fragment per section, so a control reruns only its own section)."""
import streamlit as st

from ui.evaluation import distance, likelihood, memorisation, objectives, parzen, ring
from ui.evaluation.common import data
from ui.widgets import require_app_frame, sections

require_app_frame()
st.title("Evaluation Lab")
st.caption("How to judge a generative model, and how not to: real computations on the bundled digits and the "
           "shipped models. After Theis, van den Oord & Bethge, *A note on the evaluation of generative models* "
           "(2016), and Doersch, *Tutorial on Variational Autoencoders* (2016).")
if data() is None:
    st.stop()

sections("evtab", [("Objectives", "What the objective does to the fit", objectives.objective_fits),
                   ("Log-likelihood", "Log-likelihood is the honest number", likelihood.likelihood_curve),
                   ("Parzen windows", "Parzen windows mislead", parzen.parzen_table),
                   ("Pixel distance", "Pixel distance is not perceptual distance", distance.pixel_distance),
                   ("Memorisation", "Memorisation and mode collapse", memorisation.samples_check),
                   ("Gaussian to anything", "From a Gaussian to anything", ring.gaussian_to_ring)])
