"""Transposed convolution, step by step, and the checkerboard artifacts it causes.

Follows Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill 2016).
All maps are 2-D numpy arrays indexed (row, col); sizes are in pixels. No Streamlit here.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# Distill's three decoders: transposed conv in the last two layers / only the last / nowhere.
DISTILL_CONFIGS = ("deconv_last_two", "deconv_last", "resize_all")


# ---------------------------------------------------------------- output sizes
def _int(name, value, minimum):
    """Coerce `value` to int (rejecting floats like 2.5) and check `value >= minimum`."""
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def legal_output_paddings(stride, dilation=1) -> list[int]:
    """Values PyTorch accepts for output_padding: 0 <= op < max(stride, dilation)."""
    stride, dilation = _int("stride", stride, 1), _int("dilation", dilation, 1)
    return list(range(max(stride, dilation)))


def transposed_output_size(size_in, kernel, stride=1, padding=0, output_padding=0, dilation=1) -> int:
    """H_out = (H_in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1 (one axis).

    Raises ValueError for anything PyTorch would reject (or silently mis-handle).
    """
    size_in, kernel = _int("size_in", size_in, 1), _int("kernel", kernel, 1)
    stride, dilation = _int("stride", stride, 1), _int("dilation", dilation, 1)
    padding, output_padding = _int("padding", padding, 0), _int("output_padding", output_padding, 0)
    if output_padding not in legal_output_paddings(stride, dilation):
        raise ValueError(f"output_padding={output_padding} is illegal: it must be smaller than "
                         f"max(stride, dilation) = {max(stride, dilation)}")
    out = (size_in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(f"padding={padding} is too large: the output size would be {out} (must be >= 1)")
    return out


# ------------------------------------------------------- step-by-step construction
def zero_insert(x: np.ndarray, stride) -> np.ndarray:
    """Put (stride-1) zeros between neighbouring pixels: (H, W) -> ((H-1)*s+1, (W-1)*s+1)."""
    x, stride = np.asarray(x, dtype=np.float64), _int("stride", stride, 1)
    out = np.zeros(((x.shape[0] - 1) * stride + 1, (x.shape[1] - 1) * stride + 1))
    out[::stride, ::stride] = x
    return out


@dataclass
class TransposedSteps:
    """Intermediate 2-D arrays of the construction, in order."""
    input: np.ndarray           # (H, W)
    zero_inserted: np.ndarray   # ((H-1)*s+1, (W-1)*s+1)
    padded: np.ndarray          # zero_inserted padded by d*(k-1)-p per side (+output_padding bottom/right)
    kernel_flipped: np.ndarray  # (kh, kw), rotated 180 degrees
    output: np.ndarray          # (H_out, W_out), equals F.conv_transpose2d


def transposed_conv_steps(x, kernel, stride=1, padding=0, output_padding=0, dilation=1) -> TransposedSteps:
    """Transposed convolution as zero-insertion + padding + stride-1 conv with the flipped kernel.

    x: (H, W), kernel: (kh, kw) (single channel; with channels the in/out roles would also swap).
    stride/padding/output_padding/dilation are ints applied to both axes.
    """
    x, k = np.asarray(x, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    if x.ndim != 2 or k.ndim != 2:
        raise ValueError(f"x and kernel must be 2-D, got shapes {x.shape} and {k.shape}")
    out_shape = [transposed_output_size(n, kn, stride, padding, output_padding, dilation)
                 for n, kn in zip(x.shape, k.shape)]  # also validates every parameter
    z = zero_insert(x, stride)
    # "Full" padding d*(k-1) per side (+output_padding bottom/right), then `padding` crops it back:
    # net d*(k-1)-padding zeros per side, which may be negative (i.e. a crop) for large padding.
    full = np.pad(z, [(dilation * (kn - 1), dilation * (kn - 1) + output_padding) for kn in k.shape])
    padded = full[padding: full.shape[0] - padding, padding: full.shape[1] - padding]
    flipped, out = k[::-1, ::-1].copy(), np.zeros(out_shape)
    # Stride-1 (dilated) correlation, one kernel tap at a time: kernels are tiny, images are not.
    for a, b in np.ndindex(*k.shape):
        r, c = a * dilation, b * dilation
        out += flipped[a, b] * padded[r:r + out_shape[0], c:c + out_shape[1]]
    return TransposedSteps(x, z, padded, flipped, out)


# ------------------------------------------------------------------ overlap maps
def _tconv1d_ones(v: np.ndarray, kernel, stride, padding, output_padding) -> np.ndarray:
    """1-D transposed conv of `v` with an all-ones kernel: every input stamps `kernel` copies."""
    n_out = transposed_output_size(len(v), kernel, stride, padding, output_padding)
    full = np.zeros((len(v) - 1) * stride + kernel + output_padding, dtype=np.int64)
    for i, value in enumerate(v):
        full[i * stride: i * stride + kernel] += value
    return full[padding: padding + n_out]  # padding crops both ends; output_padding re-adds at the end


def overlap_map_1d(length_in, kernel, stride, padding=0, output_padding=0) -> np.ndarray:
    """Number of input pixels contributing to each output pixel (int array, length H_out)."""
    return _tconv1d_ones(np.ones(length_in, dtype=np.int64), kernel, stride, padding, output_padding)


def overlap_map(shape_in, kernel, stride, padding=0, output_padding=0, layers=1) -> np.ndarray:
    """2-D contribution counts (H_out, W_out) after `layers` identical transposed convs.

    For layers > 1 this counts paths: conv_transpose of an all-ones input through all-ones kernels.
    An all-ones kernel is separable, so the 2-D map is the outer product of the 1-D maps.
    """
    layers, maps = _int("layers", layers, 1), []
    for n in shape_in:
        v = np.ones(_int("size_in", n, 1), dtype=np.int64)
        for _ in range(layers):
            v = _tconv1d_ones(v, kernel, stride, padding, output_padding)
        maps.append(v)
    return np.outer(maps[0], maps[1])


def pattern_period(kernel, stride) -> int | None:
    """Period of the interior 1-D overlap pattern, or None when it is even (constant).

    An interior output at offset r (mod stride) gets floor(k/s) + [r < k mod s] contributions,
    so the pattern is uneven exactly when k is not divisible by s, and then its period is s.
    """
    kernel, stride = _int("kernel", kernel, 1), _int("stride", stride, 1)
    return None if kernel % stride == 0 else stride


# ------------------------------------------------------------ Distill decoders
def _upsample_layer(c_in, c_out, transposed):
    """Doubles H and W: transposed conv k3 s2 (p1, op1) or nearest x2 + conv k3 p1."""
    if transposed:
        return nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1))


def distill_decoder(config: str, latent_dim=64, channels=None, out_size=64, seed=None,
                    final="sigmoid") -> nn.Module:
    """Random-init decoder: Linear -> (C0, 4, 4) -> log2(out_size/4) doubling layers -> (1, out, out).

    channels: input channels of each doubling layer (default 64, 32, 16, 8 ... halving, min 4);
    the last layer outputs 1 channel. ReLU between layers; final "sigmoid" or "none".
    `config` only chooses which doubling layers are transposed convs (see DISTILL_CONFIGS).
    """
    if config not in DISTILL_CONFIGS or final not in ("sigmoid", "none", None):
        raise ValueError(f"config must be one of {DISTILL_CONFIGS} and final 'sigmoid' or 'none', "
                         f"got {config!r}, {final!r}")
    n_up = max(int(out_size) // 4, 1).bit_length() - 1  # number of doublings from 4x4
    if n_up < 1 or 4 << n_up != out_size:
        raise ValueError(f"out_size must be 4 * 2**n with n >= 1, got {out_size}")
    channels = list(channels) if channels is not None else [max(64 >> i, 4) for i in range(n_up)]
    if len(channels) != n_up:
        raise ValueError(f"need {n_up} channel counts for out_size={out_size}, got {len(channels)}")
    n_deconv = {"deconv_last_two": 2, "deconv_last": 1, "resize_all": 0}[config]
    chans = channels + [1]
    with torch.random.fork_rng(devices=[]):  # seeding must not disturb the caller's RNG
        if seed is not None:
            torch.manual_seed(seed)
        mods = [nn.Linear(latent_dim, chans[0] * 16), nn.Unflatten(1, (chans[0], 4, 4)), nn.ReLU()]
        for i in range(n_up):
            mods.append(_upsample_layer(chans[i], chans[i + 1], transposed=i >= n_up - n_deconv))
            mods.append(nn.ReLU() if i < n_up - 1 else nn.Sigmoid() if final == "sigmoid" else nn.Identity())
    return nn.Sequential(*mods).eval()


def distill_outputs(config, n=4, seed=0, latent="random", size=64) -> torch.Tensor:
    """Decode n latents (N(0,1) "random" or all-ones "constant") with a seeded random-init decoder.

    Returns a float tensor (n, 1, size, size) in [0, 1] (sigmoid output).
    """
    dec = distill_decoder(config, out_size=size, seed=seed)
    if latent not in ("random", "constant"):
        raise ValueError(f"latent must be 'random' or 'constant', got {latent!r}")
    z = torch.ones(n, dec[0].in_features)  # a constant latent still gives a structured image
    if latent == "random":
        z = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return dec(z)


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
