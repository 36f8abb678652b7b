"""Glue for the Reconstruct page: picks images, runs the model, lays metrics out as tables and charts."""
from __future__ import annotations

import streamlit as st
import torch

from aecore.imageio import ImageError, to_model_input
from aecore.metrics import mse_per_image, psnr_per_image, reconstruct_batched, ssim_per_image
from aecore.noise import Noise
from aecore.train import elbo_config, loss_parts
from aecore.viz import line_chart

NOISE_LEVELS = {"gaussian": [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7], "salt_pepper": [0, 0.05, 0.1, 0.2, 0.3, 0.4],
                "masking": [0, 0.1, 0.2, 0.3, 0.5, 0.7]}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def choose_indices(text: str, n_images: int, count: int, seed: int) -> tuple[list[int], str | None]:
    """Indices typed by the visitor, or `count` seeded random ones; with a message for bad input."""
    if text.strip():
        try:
            picked = [int(t) for t in text.replace(";", ",").split(",") if t.strip()]
        except ValueError:
            return _random(n_images, count, seed), "Indices must be whole numbers separated by commas."
        bad = [i for i in picked if not 0 <= i < n_images]
        if bad or not picked:
            return _random(n_images, count, seed), f"Indices must be between 0 and {n_images - 1}."
        return picked[:48], None
    return _random(n_images, count, seed), None


def _random(n_images: int, count: int, seed: int) -> list[int]:
    return torch.randperm(n_images, generator=torch.Generator().manual_seed(seed))[:count].tolist()


def run(model, x: torch.Tensor, noise: Noise, seed: int):
    return reconstruct_batched(model, x, noise if noise.active else None, seed=seed)


def metrics_table(x, noisy, out, indices):
    mse, psnr, ssim = mse_per_image(out, x), psnr_per_image(out, x), ssim_per_image(out, x)
    table = {"test index": indices, "MSE": mse.numpy().round(5), "PSNR (dB)": psnr.numpy().round(2),
             "SSIM": ssim.numpy().round(3)}
    summary = {"MSE (per pixel)": f"{mse.mean():.4f}", "PSNR": f"{psnr.mean():.2f} dB", "SSIM": f"{ssim.mean():.3f}"}
    if not torch.equal(noisy, x):
        noisy_psnr = psnr_per_image(noisy, x)
        table["noisy input PSNR (dB)"] = noisy_psnr.numpy().round(2)
        summary["noisy input PSNR"] = f"{noisy_psnr.mean():.2f} dB"
    return table, summary


@torch.inference_mode()
def elbo_table(model, x, noisy):
    """-ELBO with its parts for these images (beta = 1, Bernoulli decoder): an honest likelihood bound."""
    model.eval()
    rows = [("clean", loss_parts(model, x, elbo_config(), torch.Generator().manual_seed(0)))]
    if not torch.equal(noisy, x):
        rows.append(("noisy (target clean)", loss_parts(model, x, elbo_config(), torch.Generator().manual_seed(0),
                                                       inputs=noisy)))
    return [{"input": name, "-ELBO": round(p["loss"].mean().item(), 2),
             "reconstruction": round(p["recon"].mean().item(), 2), "KL": round(p["kl"].mean().item(), 2)}
            for name, p in rows]


@st.cache_data(show_spinner="Measuring robustness…", max_entries=32)
def _curve(_model, model_key: str, _x, kind: str) -> dict[str, list[float]]:
    res = {"psnr": [], "ssim": [], "noisy_psnr": [], "noisy_ssim": []}
    for level in NOISE_LEVELS[kind]:
        noisy, out = reconstruct_batched(_model, _x, Noise(kind, level) if level else None, seed=0)
        res["psnr"].append(psnr_per_image(out, _x).mean().item())
        res["ssim"].append(ssim_per_image(out, _x).mean().item())
        # the clean input's PSNR is infinite: leave that point out rather than plot a made-up cap
        res["noisy_psnr"].append(psnr_per_image(noisy, _x).mean().item() if level else None)
        res["noisy_ssim"].append(ssim_per_image(noisy, _x).mean().item())
    return res


def noise_curves(models: dict, x, kind: str):
    levels = NOISE_LEVELS[kind]
    psnr, ssim = {}, {}
    for label, model in models.items():
        r = _curve(model, f"{label}:{id(model)}", x, kind)
        psnr[label[:40]], ssim[label[:40]] = r["psnr"], r["ssim"]
    psnr["noisy input (baseline)"], ssim["noisy input (baseline)"] = r["noisy_psnr"], r["noisy_ssim"]
    unit = "sigma" if kind == "gaussian" else "fraction of pixels"
    base = ["noisy input (baseline)"]
    return (line_chart(levels, psnr, f"PSNR vs {kind} noise", f"noise level ({unit})", "PSNR (dB)", base),
            line_chart(levels, ssim, f"SSIM vs {kind} noise", f"noise level ({unit})", "SSIM (0-1)", base))


def convert_uploads(files, shape) -> tuple[dict[str, torch.Tensor], list[str]]:
    converted, errors = {}, []
    for f in files[:16]:
        if f.size > MAX_UPLOAD_BYTES:
            errors.append(f"{f.name}: larger than 10 MB; please upload a smaller picture.")
            continue
        try:
            converted[f.name] = to_model_input(f.getvalue(), shape)
        except ImageError as e:
            errors.append(f"{f.name}: {e}. Upload a PNG or JPG picture.")
    return converted, errors
