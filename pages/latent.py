"""Latent Space: where the encoder puts each image, and what the decoder makes of points in between. Thin: the
sections are fragments in ui/latent_sections.py."""
import streamlit as st

from ui import latent_sections as sections
from ui import latentview as lv
from ui.text import plain
from ui.widgets import model_changed, picked_model_and_data, require_app_frame, set_url, settings_reader, url_value

require_app_frame()
st.title("Latent space")
entry, data = picked_model_and_data()
model, z_dim = entry.model, entry.checkpoint.spec.latent_dim
link = settings_reader(not model_changed("latent", entry.key))  # another model: its own defaults
codes = lv.test_codes(entry, data)
kind = ("posterior means: the centre of each image's Gaussian" if model.variational else "one point per image")
about, seed_box = st.columns([4, 1], vertical_alignment="bottom")
about.caption(f"{plain(entry.label)}: {len(codes):,} test images encoded to {z_dim}-D codes ({kind}).")
if model.variational and z_dim == 2:
    about.caption("A 2-number code is blurry by necessity: two numbers cannot hold every stroke of a digit, so "
                  "reconstructions are averages of look-alikes. In exchange, the whole code space can be drawn.")
seed = seed_box.number_input("Seed", 0, 2**31 - 1, url_value("seed", 0, cast=int, bounds=(0, 2**31 - 1)),
                             help="Which random samples from the prior are drawn, and where t-SNE starts: another "
                                  "seed gives other samples and another (equally valid) t-SNE layout.")
set_url(seed=seed)

sections.codes_view(entry, data, codes, seed, link)
st.subheader("Generating")
sections.generating(entry, data, seed)
st.subheader("Interpolation")
sections.interpolation(entry, data, codes)
