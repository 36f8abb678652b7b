"""Deployment settings: a shared demo (Streamlit Community Cloud, or AECORE_SHARED=1) gets tighter limits and
never writes into checkpoints/."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = ROOT / "checkpoints"
FEATURED_CHECKPOINTS = ("conv_vae_z2", "mlp_vae_z2")  # listed first: the lecture's models, 2-D codes to look at
SHARED = os.environ.get("AECORE_SHARED", "") == "1" or (
    Path("/mount/src").is_dir() and "AECORE_SHARED" not in os.environ)

MAX_EPOCHS = 30 if SHARED else 200
MAX_TRAIN_IMAGES = 10_000 if SHARED else 60_000  # bounds memory and time for downloaded datasets
MAX_CONCURRENT_JOBS = int(os.environ.get("AECORE_MAX_JOBS", 2 if SHARED else 4))
LIVE_REFRESH_S = 1.0  # the live view polls at 1 Hz; the run itself is in another process (aecore/jobs.py)
SIDEBAR_REFRESH_S = 2.0  # every page's sidebar shows (and keeps alive) the visitor's run at this rate
# A run no page has polled for this long is stopped (a closed tab, or a reload on a page without `?run=`). Long
# enough for a browser tab in the background, whose timers Chrome throttles to one a minute.
ORPHAN_AFTER_S = float(os.environ.get("AECORE_ORPHAN_AFTER_S", 150))
