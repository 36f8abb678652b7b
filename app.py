"""Autoencoder Studio (placeholder until the dashboard lands): shows that aecore is installed and what is coming."""
import streamlit as st

import aecore
from aecore.catalog import MODELS
from aecore.data import DATASETS, dataset_status

st.set_page_config(page_title="Autoencoder Studio", page_icon="🧩", layout="wide")
st.title("Autoencoder Studio")
st.write(f"aecore {aecore.__version__} is installed. The dashboard pages (Train, Reconstruct & Denoise, "
         "Latent Space, Checkerboard Lab) are being built; meanwhile train from the command line:")
st.code("python -m aecore train --model conv_vae --dataset mnist-5k --epochs 5 --out checkpoints/conv_vae.pt")
st.subheader("Models")
st.table([{"name": p.name, "model": p.title, "what it is": p.description} for p in MODELS.values()])
st.subheader("Datasets")
st.table([{"name": d.name, "shape": "x".join(map(str, d.shape)), "status": dataset_status(d.name)}
          for d in DATASETS.values()])
