"""Measuring checkerboard artifacts: the mean power spectrum of a batch of images, a spectral score for
periodic stride artifacts, and the spectrum in a form ready to plot.

Split out of aecore.checkerboard (which still re-exports these names). No Streamlit here.
"""
from __future__ import annotations

import math

import numpy as np
import torch


# --------------------------------------------------------------- measuring it
def artifact_spectrum(images, window=True, normalize=True) -> np.ndarray:
    """Mean 2-D power spectrum (H, W) of images (N, C, H, W), (N, H, W) or (H, W).

    NOT fftshifted: bin (0, 0) is DC, (H//2, W//2) is Nyquist; bin k is k/H cycles/pixel.

    Each image (and channel) is mean-removed, multiplied by a periodic 2-D Hann window (so the
    non-periodic border does not leak a cross of energy along the axes) and |FFT|^2 is taken.
    normalize scales each spectrum to sum 1 (constant images stay 0) so every image weighs the same.
    """
    x = images.detach().cpu().numpy() if torch.is_tensor(images) else np.asarray(images)
    x = x.astype(np.float64).reshape(-1, *x.shape[-2:])  # channels count as separate images
    x = x - x.mean(axis=(1, 2), keepdims=True)
    if window:
        hann = [0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n) for n in x.shape[1:]]
        x = x * np.outer(*hann)
    p = np.abs(np.fft.fft2(x)) ** 2
    if normalize:
        total = p.sum(axis=(1, 2), keepdims=True)
        p = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
    return p.mean(axis=0)


def _peak_bins(h, w, periods):
    """FFT bins of every harmonic m/p (m = 0..p-1) per axis for each period p, DC excluded."""
    bins = set()
    for p in periods:
        rows = {round(m * h / p) % h for m in range(p)}
        cols = {round(m * w / p) % w for m in range(p)}
        bins |= {(r, c) for r in rows for c in cols}
    bins.discard((0, 0))
    return sorted(bins)


def _baseline(p, near, r, c):
    """Background power under peak (r, c): largest directional mean at offsets +-2, +-3, or None.

    Taking the largest direction lets a smooth ridge through the peak (e.g. the axis ridge of a
    gradient image) explain it away; only isolated spikes, i.e. periodic artifacts, stand out.
    """
    (h, w), steps, means = p.shape, np.array([-3, -2, 2, 3]), []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):  # row, column, both diagonals
        rows, cols = (r + dr * steps) % h, (c + dc * steps) % w
        keep = ~near[rows, cols]
        if keep.any():
            means.append(p[rows[keep], cols[keep]].mean())
    return max(means) if means else None


def artifact_score(images, periods=(2, 4)) -> float:
    """Spectral checkerboard score: ~0 for smooth images, large for periodic stride artifacts.

    Definition: P = artifact_spectrum(images) (mean-removed, Hann-windowed, per-image normalised
    power, averaged over the batch). Peak bins are the harmonics m/p cycles/pixel (m = 0..p-1) of
    each period p on both axes and their combinations (period 2 -> the Nyquist bins (H/2, 0),
    (0, W/2), (H/2, W/2); period 4 adds the 1/4 and 3/4 bins), DC excluded. The background B of a
    peak is the largest of four directional means (row, column, both diagonals) of the bins at
    offsets +-2, +-3 from it, ignoring bins within Chebyshev distance 1 of any peak or of DC (the
    Hann window smears a pure tone over +-1 bin). Then
        score = max(0, ln(mean over peaks of (P[peak] + eps) / (B + eps))),  eps = 1e-12 * sum(P)
    i.e. the natural log of how many times the periodic bins stand above their surroundings.
    Constant images (P == 0) give exactly 0, never NaN; so do images too small to have a
    background for any peak.
    """
    p = artifact_spectrum(images)
    h, w = p.shape
    eps = 1e-12 * p.sum()  # caps the score near ln(1e12) ~ 27.6 when the background is exactly 0
    if eps == 0:  # all images constant: no power anywhere, hence no artifact
        return 0.0
    peaks = _peak_bins(h, w, periods)
    near = np.zeros((h, w), dtype=bool)  # main lobes (+-1 bin) of every peak and of DC
    for r, c in peaks + [(0, 0)]:
        near[np.ix_(np.arange(r - 1, r + 2) % h, np.arange(c - 1, c + 2) % w)] = True
    ratios = [(p[r, c] + eps) / (b + eps) for r, c in peaks
              if (b := _baseline(p, near, r, c)) is not None]
    return float(max(0.0, math.log(np.mean(ratios)))) if ratios else 0.0


# --------------------------------------------------------------- showing it
def spectrum_for_display(power: np.ndarray, floor: float = 1e-7):
    """(log10 power fftshifted so DC is central, row frequencies, column frequencies), frequencies in
    cycles/pixel from -0.5 up to 0.5. Bins below `floor` times the total power are clipped to that floor,
    so a mean-removed DC bin does not become -inf."""
    p = np.asarray(power, dtype=np.float64)
    total = p.sum()
    lo = floor * total if total > 0 else floor
    shown = np.log10(np.maximum(np.fft.fftshift(p), lo))
    fy, fx = (np.fft.fftshift(np.fft.fftfreq(n)) for n in p.shape)
    return shown, fy, fx
