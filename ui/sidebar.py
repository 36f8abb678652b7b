"""The sidebar every page shares: the running job's progress, and loading a checkpoint file."""
import streamlit as st

from aecore.checkpoints import CheckpointError, load_checkpoint
from ui import config, glossary, session, training
from ui.state import add_session_model
from ui.text import plain


def sidebar() -> None:
    run = training.current_run()
    if run is not None and not run.job.snapshot().finished:
        run_status()
    with st.expander("Load a checkpoint file"):
        upload = st.file_uploader("aecore checkpoint (.pt)", type=["pt"], key="ckpt_upload",
                                  help="A file downloaded from the Train page or written by `python -m aecore train`.")
        if upload is not None and session.loaded_upload.get() != upload.file_id:
            try:
                entry = add_session_model(load_checkpoint(upload.getvalue(), name=upload.name), "uploaded")
            except CheckpointError as e:
                st.error(str(e))
            else:
                session.loaded_upload.set(upload.file_id)
                session.choose_model(entry.key)
                st.success(f"Loaded {plain(entry.label)}")
    glossary.glossary_expander()


@st.fragment(run_every=config.SIDEBAR_REFRESH_S)
def run_status() -> None:
    """The visitor's run on every page; polling it also tells the server someone is still watching."""
    run = training.current_run()
    if run is None:
        return
    snap = run.job.snapshot()
    if snap.finished:
        st.rerun()  # the whole page once: the new model joins the pickers, and this poll stops
    label = {"starting": "starting…", "stopping": "stopping…"}.get(snap.status, f"{snap.progress:.0%}")
    st.progress(snap.progress, text=f"Training: epoch {max(snap.epoch, 1)}/{snap.epochs}, {label}")
    st.page_link("pages/train.py", label="Watch it on Train", icon=":material/model_training:")
