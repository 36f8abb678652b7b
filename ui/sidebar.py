"""The sidebar every page shares: the running job's progress, and loading a checkpoint file."""
import streamlit as st

from aecore.checkpoints import CheckpointError, load_checkpoint
from ui.state import add_session_model


def sidebar() -> None:
    job = st.session_state.get("job")
    if job is not None and not job.snapshot().finished:
        snap = job.snapshot()
        st.caption(f"Training: epoch {max(snap.epoch, 1)}/{snap.epochs}, {snap.progress:.0%}")
    with st.expander("Load a checkpoint file"):
        upload = st.file_uploader("aecore checkpoint (.pt)", type=["pt"], key="ckpt_upload",
                                  help="A file downloaded from the Train page or written by `python -m aecore train`.")
        if upload is not None and st.session_state.get("ckpt_loaded") != upload.file_id:
            try:
                entry = add_session_model(load_checkpoint(upload.getvalue(), name=upload.name), "uploaded")
            except CheckpointError as e:
                st.error(str(e))
            else:
                st.session_state["ckpt_loaded"] = upload.file_id
                st.session_state["model_key"] = entry.key
                st.success(f"Loaded {entry.label}")
