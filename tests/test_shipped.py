"""Every shipped checkpoint loads safely and its stored test metrics match a fresh evaluation."""
from pathlib import Path

import pytest

from aecore.checkpoints import list_checkpoints, load_checkpoint
from aecore.data import load_dataset
from aecore.metrics import evaluate_model

SHIPPED = list_checkpoints(Path(__file__).resolve().parent.parent / "checkpoints")
CHECKED = ["objective_loss", "mse", "psnr", "ssim", "neg_elbo", "recon_nats", "kl_nats", "denoised_psnr",
           "noisy_input_psnr", "probe_accuracy"]


def test_checkpoints_are_shipped():
    assert len(SHIPPED) >= 5


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_checkpoint_metrics_match_a_fresh_evaluation(path):
    ckpt = load_checkpoint(path)
    assert "command" in ckpt.extra and ckpt.extra["command"].startswith("python -m aecore train")
    fresh = evaluate_model(ckpt.model, load_dataset(ckpt.dataset), ckpt.config, iw_samples=0)
    for key in CHECKED:
        if key in ckpt.metrics:
            assert fresh[key] == pytest.approx(ckpt.metrics[key], rel=2e-3, abs=2e-3), key
