"""Honest numbers for a trained model: MSE, PSNR, SSIM, -ELBO with its parts, IW-NLL, active units, probes.

Images are (N, C, H, W) in [0, 1]. Per-image values are returned as (N,) tensors; `evaluate_model` averages.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .losses import gaussian_log_prob, kl_per_dimension, reconstruction_loss
from .noise import Noise, corrupt
from .train import TrainConfig, elbo_config, evaluate, prepare
from .runtime import INFER_BATCH

MAX_IW_SAMPLES = 1000  # k decoder passes per image: 1000 is ~20x the k = 50 evaluation's time


def mse_per_image(x_hat, x) -> torch.Tensor:
    """Mean squared error per pixel, one value per image (N,)."""
    return (x_hat - x).square().flatten(1).mean(1)


def psnr_per_image(x_hat, x, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for data range 1, (N,)."""
    return 10 * torch.log10(1.0 / (mse_per_image(x_hat, x) + eps))


def ssim_per_image(x_hat, x) -> torch.Tensor:
    """Structural similarity (scikit-image, 7x7 window, data range 1), (N,)."""
    from skimage.metrics import structural_similarity  # imported here: slow to import, needed rarely

    a, b = x_hat.detach().cpu().numpy(), x.detach().cpu().numpy()
    side = min(a.shape[-2:])
    win = min(7, side if side % 2 else side - 1)  # skimage needs an odd window no larger than the image
    return torch.tensor([structural_similarity(p, q, data_range=1.0, channel_axis=0, win_size=win)
                         for p, q in zip(a, b)], dtype=torch.float32)


@torch.inference_mode()
def reconstruct_batched(model, x, noise: Noise | None = None, seed: int = 0, batch: int = INFER_BATCH):
    """(noisy inputs, reconstructions) for x, both (N, C, H, W) in [0, 1] on the CPU."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    inputs = corrupt(x, noise, g) if noise is not None else x
    model.eval()
    outs = [model.reconstruct(prepare(inputs[i : i + batch], device)).cpu() for i in range(0, len(x), batch)]
    return inputs, torch.cat(outs) if outs else inputs[:0]


def image_metrics(x_hat, x) -> dict[str, float]:
    return {"mse": mse_per_image(x_hat, x).mean().item(), "psnr": psnr_per_image(x_hat, x).mean().item(),
            "ssim": ssim_per_image(x_hat, x).mean().item()}


@torch.inference_mode()
def log_importance_weights(model, x, samples: int = 50, seed: int = 0, batch: int = 100,
                           chunk_codes: int = INFER_BATCH, progress=None) -> torch.Tensor:
    """log p(x|z_k) + log p(z_k) - log q(z_k|x) for z_k ~ q(z|x), k = 1..samples: (samples, N) nats.

    Bernoulli decoder. Each batch of images draws from its own seeded stream, one sample at a time, so the first k
    draws are the same whatever `samples` is (for the same `batch`); they are decoded `chunk_codes` at a time (see
    INFER_BATCH). `progress(done, total)` is called after each batch of images.
    """
    if not 1 <= samples <= MAX_IW_SAMPLES:
        raise ValueError(f"IW-NLL samples must be between 1 and {MAX_IW_SAMPLES}, got {samples}")
    device = next(model.parameters()).device
    g = torch.Generator(device=device)
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        g.manual_seed(seed * 1_000_003 + i)
        xb = prepare(x[i : i + batch], device)
        mu, logvar = model.encode_distribution(xb)
        per_chunk = max(1, chunk_codes // len(xb))
        terms = []
        for start in range(0, samples, per_chunk):
            zs = torch.stack([model.reparameterize(mu, logvar, g) for _ in range(min(per_chunk, samples - start))])
            logits = model.decode_logits(zs.flatten(0, 1))
            log_px_z = -reconstruction_loss(logits, xb.repeat(len(zs), *([1] * (xb.dim() - 1))), "bce")
            terms.append(log_px_z.view(len(zs), -1) + gaussian_log_prob(zs) - gaussian_log_prob(zs, mu, logvar))
        out.append(torch.cat(terms).cpu())
        if progress is not None:
            progress(min(i + batch, len(x)), len(x))
    return torch.cat(out, dim=1)


def iw_nll(model, x, samples: int = 50, seed: int = 0, batch: int = 100, progress=None) -> torch.Tensor:
    """Importance-weighted estimate of -log p(x) in nats, (N,) (Burda et al. 2016).

    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k, z_k ~ q(z|x).
    Tighter than -ELBO and approaches -log p(x) as k grows.
    """
    w = log_importance_weights(model, x, samples, seed, batch, progress=progress)
    return -(torch.logsumexp(w, 0) - math.log(samples))


@torch.inference_mode()
def kl_per_latent(model, x, batch: int = INFER_BATCH) -> torch.Tensor:
    """Mean KL per latent dimension over x, (latent,) nats; a unit with KL > 0.01 is 'active'."""
    device = next(model.parameters()).device
    model.eval()
    total = torch.zeros(model.spec.latent_dim)
    for i in range(0, len(x), batch):
        mu, logvar = model.encode_distribution(prepare(x[i : i + batch], device))
        total += kl_per_dimension(mu, logvar).sum(0).cpu()
    return total / max(len(x), 1)


@torch.inference_mode()
def encode_all(model, x, batch: int = INFER_BATCH) -> torch.Tensor:
    """Deterministic codes (N, latent) on the CPU (posterior means for VAEs)."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model.encode(prepare(x[i : i + batch], device)).cpu() for i in range(0, len(x), batch)])


def probe_accuracy(train_codes, train_y, test_codes, test_y) -> float:
    """Test accuracy of a logistic-regression probe on standardised codes: how well labels separate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    probe.fit(np.asarray(train_codes), np.asarray(train_y))
    return float(probe.score(np.asarray(test_codes), np.asarray(test_y)))


def evaluate_model(model, data, cfg: TrainConfig, iw_samples: int = 50, probe: bool = True, progress=None,
                   on_ready=None) -> dict:
    """Test-split metrics for any model: objective parts, image quality, VAE likelihoods, denoising, probe.
    The IW-NLL, most of a VAE's evaluation time, comes last (its key keeps its place): `on_ready(metrics)` gets every
    other metric before it starts, and `progress(done, total)` follows its images."""
    m: dict = {"parameters": sum(p.numel() for p in model.parameters()), "test_images": len(data.test_x)}
    iw_key = f"iw_nll_k{iw_samples}" if model.variational and iw_samples > 0 else None
    objective = evaluate(model, data.test_x, cfg)
    m.update({f"objective_{k}": v for k, v in objective.items()})
    _, recon = reconstruct_batched(model, data.test_x)
    m.update(image_metrics(recon, data.test_x))
    if model.variational:
        elbo = elbo_config(cfg)  # the objective already is the ELBO for a plain VAE: do not compute it twice
        parts = objective if elbo == cfg else evaluate(model, data.test_x, elbo)
        m.update(neg_elbo=parts["loss"], recon_nats=parts["recon"], kl_nats=parts["kl"])
        if iw_key:
            m[iw_key] = None  # its place among the metrics; computed last, below
        kl = kl_per_latent(model, data.test_x)
        m.update(kl_per_dim=[round(v, 4) for v in kl.tolist()], active_units=int((kl > 0.01).sum()))
    noise = cfg.noise_spec
    if noise.active:
        noisy, denoised = reconstruct_batched(model, data.test_x, noise, seed=cfg.seed + 1)
        m.update(noise=str(noise), noisy_input_psnr=psnr_per_image(noisy, data.test_x).mean().item(),
                 denoised_psnr=psnr_per_image(denoised, data.test_x).mean().item(),
                 denoised_ssim=ssim_per_image(denoised, data.test_x).mean().item())
    if probe and data.train_y is not None and data.test_y is not None:
        m["probe_accuracy"] = probe_accuracy(encode_all(model, data.train_x), data.train_y,
                                             encode_all(model, data.test_x), data.test_y)
    if iw_key:
        if on_ready is not None:
            on_ready({k: v for k, v in m.items() if k != iw_key})
        m[iw_key] = iw_nll(model, data.test_x, iw_samples, progress=progress).mean().item()
    return m
