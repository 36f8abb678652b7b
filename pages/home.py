"""Home: what the studio is, and a class in seven steps (ui/guide.py), each opening the right page with the right
settings."""
import streamlit as st

from ui import guide
from ui.widgets import image_grid, require_app_frame

require_app_frame()
st.title("Autoencoder Studio")
st.markdown("An **autoencoder** squeezes an image through a small code and rebuilds it. Here you can train one, "
            "watch it learn, look at its code space, see why some decoders paint checkerboards, and learn how to "
            "judge a model that makes new images. Follow the steps below in order (a lecturer can project them), "
            "or jump to any page from the sidebar.")
st.header("A class in seven steps", divider="gray")
pictures = guide.pictures()
for number, step in enumerate(guide.STEPS, start=1):
    with st.container(border=True):
        text, picture = st.columns([3, 2], gap="large", vertical_alignment="center")
        with text:
            st.subheader(f"{number} · {step.title}", anchor=f"step-{number}")
            st.markdown(step.text)
            st.page_link(step.page, label=step.label, icon=":material/arrow_forward:", query_params=step.query)
        if step.picture in pictures:
            images, columns = pictures[step.picture]
            side = 300 // columns if columns > 1 else 130  # a row of pictures about as wide as the column
            image_grid(images, nrow=columns, caption=step.caption, target=side, where=picture)
