"""aecore: autoencoders you can watch learn. The library behind Autoencoder Studio (no Streamlit here)."""

__version__ = "0.1.0"
