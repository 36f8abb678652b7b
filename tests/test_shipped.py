"""Every shipped checkpoint loads safely and its stored test metrics match a fresh evaluation."""
from pathlib import Path

import pytest

from aecore.checkpoints import list_checkpoints, load_checkpoint
from aecore.data import load_dataset
from aecore.metrics import evaluate_model

SHIPPED = list_checkpoints(Path(__file__).resolve().parent.parent / "checkpoints")
CHECKED = ["objective_loss", "mse", "psnr", "ssim", "neg_elbo", "recon_nats", "kl_nats", "denoised_psnr",
           "noisy_input_psnr", "probe_accuracy"]


def test_the_promised_checkpoints_are_shipped_and_small():
    names = {p.stem for p in SHIPPED}
    promised = {"linear_ae", "conv_ae", "denoising_ae", "sparse_ae", "mlp_vae_z2", "conv_vae_z2", "conv_vae_z4",
                "conv_vae_z16", "beta_vae", "conv_vae_digits",
                *(f"conv_vae_z2_{m}" for m in ("transposed4", "nearest", "bilinear", "subpixel"))}
    assert promised <= names, sorted(promised - names)
    assert sum(p.stat().st_size for p in SHIPPED) < 30e6


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_vaes_were_chosen_on_validation_never_on_test(path):
    ckpt = load_checkpoint(path)
    if ckpt.model.variational:
        assert ckpt.extra.get("validation_images", 0) > 0 and ckpt.extra.get("selected_epoch", 0) >= 1
        assert "--keep-best" in ckpt.extra["command"]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_checkpoint_metrics_match_a_fresh_evaluation(path):
    ckpt = load_checkpoint(path)
    assert "command" in ckpt.extra and ckpt.extra["command"].startswith("python -m aecore train")
    fresh = evaluate_model(ckpt.model, load_dataset(ckpt.dataset), ckpt.config, iw_samples=0)
    for key in CHECKED:
        if key in ckpt.metrics:
            assert fresh[key] == pytest.approx(ckpt.metrics[key], rel=2e-3, abs=2e-3), key
