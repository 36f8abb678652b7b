"""Glue for the Reconstruct page: picks images, runs the model, lays metrics out as tables and charts."""
from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict

import streamlit as st
import torch

from aecore.imageio import ACCEPTED_EXTENSIONS, ACCEPTED_TEXT, MAX_PIXELS, ImageError, to_model_input
from aecore.metrics import mse_per_image, psnr_per_image, reconstruct_batched, ssim_per_image
from aecore.noise import Noise
from aecore.train import elbo_config, loss_parts
from aecore.viz import line_chart
from ui.text import plain_html

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


def default_comparison(entry, others: dict) -> str | None:
    """What a model is best compared with: the same architecture trained the other way round (a denoising AE
    against the conv AE trained on clean images, and back); else nothing."""
    spec, noise = entry.checkpoint.spec, entry.checkpoint.config.noise
    for key, other in others.items():
        o = other.checkpoint
        if (o.spec.family, o.spec.latent_dim, o.dataset) == (spec.family, spec.latent_dim, entry.checkpoint.dataset) \
                and (o.config.noise == "none") != (noise == "none"):
            return key
    return None


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
        psnr[plain_html(label[:40])], ssim[plain_html(label[:40])] = r["psnr"], r["ssim"]
    psnr["noisy input (baseline)"], ssim["noisy input (baseline)"] = r["noisy_psnr"], r["noisy_ssim"]
    unit = "sigma" if kind == "gaussian" else "fraction of pixels"
    base = ["noisy input (baseline)"]
    return (line_chart(levels, psnr, f"PSNR vs {kind} noise", f"noise level ({unit})", "PSNR (dB)", base),
            line_chart(levels, ssim, f"SSIM vs {kind} noise", f"noise level ({unit})", "SSIM (0-1)", base))


MAX_UPLOADS = 16
UPLOAD_TYPES = ACCEPTED_EXTENSIONS
UPLOAD_HELP = (f"Up to {MAX_UPLOADS} pictures, each at most {MAX_UPLOAD_BYTES // 2**20} MB and {MAX_PIXELS / 1e6:.1f} "
               f"megapixels: {ACCEPTED_TEXT} (the first frame of an animation).")
_CACHE_ENTRIES = 64
_cache: OrderedDict[tuple[str, tuple[int, ...]], torch.Tensor | str] = OrderedDict()
_cache_lock = threading.Lock()


def _convert_once(data: bytes, shape) -> torch.Tensor:
    """to_model_input behind a small process-wide LRU keyed by (SHA-256 of the bytes, shape): each rerun of the page
    (every widget change) reuses the result instead of decoding the picture again; refusals are remembered too."""
    key = (hashlib.sha256(data).hexdigest(), tuple(int(s) for s in shape))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is None:
        try:
            hit = to_model_input(data, key[1])
        except ImageError as e:
            hit = str(e)
        with _cache_lock:
            _cache[key] = hit
            while len(_cache) > _CACHE_ENTRIES:
                _cache.popitem(last=False)
    if isinstance(hit, str):
        raise ImageError(hit)
    return hit.clone()


def _one_line(name, limit: int = 80) -> str:
    name = " ".join(str(name).split()) or "unnamed"
    return name if len(name) <= limit else name[:limit - 1] + "…"


def _code_span(text: str) -> str:
    """`text` as a Markdown code span: shown as typed, never as a link, image, emphasis or Streamlit directive."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def convert_uploads(files, shape) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Model inputs for the first MAX_UPLOADS uploaded pictures, keyed "position. name" in upload order (two files
    with one name both count; the keys are plain text), and messages for the rest, including how many files were
    over the count. The messages are Markdown for st.error, each file name in a code span so it shows as typed."""
    converted, errors = {}, []
    for i, f in enumerate(files[:MAX_UPLOADS], 1):
        name = _one_line(f.name)
        if f.size > MAX_UPLOAD_BYTES:
            errors.append(f"Picture {i}, {_code_span(name)}: larger than {MAX_UPLOAD_BYTES // 2**20} MB; "
                          "please upload a smaller picture.")
            continue
        try:
            converted[f"{i}. {name}"] = _convert_once(f.getvalue(), shape)
        except ImageError as e:
            errors.append(f"Picture {i}, {_code_span(name)}: {e}.")
    extra = len(files) - MAX_UPLOADS
    if extra > 0:
        errors.append(f"Only the first {MAX_UPLOADS} pictures are used; {extra} more "
                      f"{'was' if extra == 1 else 'were'} ignored.")
    return converted, errors
