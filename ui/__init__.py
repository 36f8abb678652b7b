"""Streamlit helpers shared by the pages (the app side; the library `aecore` never imports Streamlit)."""
