"""aecore: autoencoders you can watch learn. The library behind Autoencoder Studio (no Streamlit here)."""
from .runtime import prepare_openmp

prepare_openmp()  # before anything imports torch: OpenMP threads that sleep, not spin, on a shared CPU

__version__ = "0.1.0"
