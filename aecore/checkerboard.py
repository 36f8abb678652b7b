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


# ------------------------------------------------- explaining it (pure helpers for the Checkerboard Lab)
def output_size_formula(size_in, kernel, stride=1, padding=0, output_padding=0, dilation=1) -> str:
    """The output-size formula with the numbers substituted, e.g. "(6 - 1)*2 - 2*0 + 1*(3 - 1) + 0 + 1 = 13".

    Pure arithmetic, no validation: an illegal combination still shows what the formula gives.
    """
    raw = (size_in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    return (f"({size_in} - 1)*{stride} - 2*{padding} + {dilation}*({kernel} - 1) + {output_padding} + 1"
            f" = {raw}")


def max_legal_padding(size_in, kernel, stride=1, output_padding=0, dilation=1) -> int:
    """Largest padding that still leaves an output of at least 1 pixel (-1 if none does)."""
    raw = (size_in - 1) * stride + dilation * (kernel - 1) + output_padding
    return raw // 2 if raw >= 0 else -1


def parameter_problems(shape_in, kernel_shape, stride=1, padding=0, output_padding=0, dilation=1) -> list[str]:
    """Plain-language reasons why PyTorch would refuse these settings, each saying what is legal instead.

    shape_in and kernel_shape are (rows, cols). An empty list means the combination is legal.
    """
    problems, given_op = [], output_padding
    legal_op = legal_output_paddings(stride, dilation)
    if output_padding not in legal_op:
        values = ", ".join(map(str, legal_op))
        problems.append(f"Output padding {output_padding} is not allowed with stride {stride} and dilation "
                        f"{dilation}: it must be smaller than max(stride, dilation) = {max(stride, dilation)}, "
                        f"so the legal values are {values}. (It only adds rows/columns at the bottom/right to "
                        f"resolve the size ambiguity of a stride > 1.)")
        output_padding = legal_op[-1]  # judge the padding with the largest legal value
    for axis, n, k in zip(("height", "width"), shape_in, kernel_shape):
        top = max_legal_padding(n, k, stride, output_padding, dilation)
        raw = (n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1
        if raw < 1:
            assumed = f" (even with output padding {output_padding})" if output_padding != given_op else ""
            problems.append(f"Padding {padding} is too large for the {axis}: the output {axis} would be {raw} "
                            f"pixel(s){assumed}. With an input {axis} of {n} and kernel {k}, padding can be at "
                            f"most {top} here (padding crops the output in a transposed convolution).")
            break
    return problems


def example_input(kind: str, shape=(6, 4), kernel_size=3, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """(input, kernel) for the calculator, as float arrays.

    kind: "lecture_6x4" (values 1..H*W, all-ones kernel), "lecture_stamp" (the lecture's [[7,10],[7,10]] with
    filter [[1,0],[2,0]]; shape and kernel_size are ignored), "ones" (all-ones input and kernel: the output is
    the overlap count) or "random" (integers 0-9 from `seed`, all-ones kernel).
    """
    rows, cols = (_int("rows", shape[0], 1), _int("cols", shape[1], 1))
    k = _int("kernel_size", kernel_size, 1)
    ones_kernel = np.ones((k, k))
    if kind == "lecture_stamp":
        return np.array([[7.0, 10.0], [7.0, 10.0]]), np.array([[1.0, 0.0], [2.0, 0.0]])
    if kind == "lecture_6x4":
        return np.arange(1.0, rows * cols + 1).reshape(rows, cols), ones_kernel
    if kind == "ones":
        return np.ones((rows, cols)), ones_kernel
    if kind == "random":
        return np.random.default_rng(seed).integers(0, 10, (rows, cols)).astype(np.float64), ones_kernel
    raise ValueError(f"unknown input kind {kind!r}; choose lecture_6x4, lecture_stamp, ones or random")


def border_margin(kernel, stride, layers=1) -> int:
    """Output pixels at each end of a 1-D overlap profile that the border still affects after `layers` layers:
    (k - 1)(1 + s + ... + s^(layers-1)). Pixels further in see the pattern of an infinite input."""
    kernel, stride, layers = _int("kernel", kernel, 1), _int("stride", stride, 1), _int("layers", layers, 1)
    return (kernel - 1) * sum(stride**i for i in range(layers))


def overlap_profile(length_in, kernel, stride, layers=1, padding=0, output_padding=0) -> np.ndarray:
    """1-D contribution counts (paths) after `layers` identical transposed convs with all-ones kernels."""
    v = np.ones(_int("length_in", length_in, 1), dtype=np.int64)
    for _ in range(_int("layers", layers, 1)):
        v = _tconv1d_ones(v, kernel, stride, padding, output_padding)
    return v


def minimal_period(values) -> int | None:
    """Smallest p >= 1 with values[i + p] == values[i] for all i; None if the sequence is constant.

    Returns len(values) when nothing shorter repeats (too short to tell).
    """
    v = np.asarray(values)
    if len(v) == 0 or np.all(v == v[0]):
        return None
    for p in range(1, len(v)):
        if np.array_equal(v[p:], v[:-p]):
            return p
    return len(v)


@dataclass
class OverlapPattern:
    """The interior overlap pattern of `layers` stacked transposed convs (kernel k, stride s)."""
    kernel: int
    stride: int
    layers: int
    profile: np.ndarray   # the whole 1-D profile, borders included
    start: int            # profile[start:stop] is the interior (no border effect)
    stop: int
    period: int | None    # None: the interior is even
    cycle: tuple          # one period of interior values, rotated to start at its smallest rotation
    phase: int = 0        # profile[start + phase:][:period] is that cycle

    @property
    def interior(self) -> np.ndarray:
        return self.profile[self.start:self.stop]

    @property
    def ratio(self) -> float:
        """max / min of the interior counts along one axis: 1 means even; 2-D maps get ratio**2."""
        inner = self.interior
        return float(inner.max() / inner.min()) if inner.min() > 0 else math.inf

    @property
    def has_gaps(self) -> bool:
        """Some interior outputs get no input at all (kernel smaller than stride)."""
        return bool(self.interior.min() == 0)


def overlap_pattern(kernel, stride, layers=1, periods=4) -> OverlapPattern:
    """Interior pattern of the overlap counts, measured on an input long enough to show `periods` periods.

    One layer: the period is `pattern_period(kernel, stride)`; stacking layers multiplies the unevenness and
    can lengthen the period (up to stride**layers).
    """
    kernel, stride, layers = _int("kernel", kernel, 1), _int("stride", stride, 1), _int("layers", layers, 1)
    margin, span = border_margin(kernel, stride, layers), stride**layers
    # interior length = (n - 1) * s^L + 1 - 2 * margin + (k - 1)(...) >= periods * s^L: solve for n generously
    n = periods + 2 + -(-2 * margin // span)
    profile = overlap_profile(n, kernel, stride, layers)
    start, stop = margin, len(profile) - margin
    inner = profile[start:stop]
    period = minimal_period(inner)
    rotations = [tuple(int(c) for c in inner[r: r + (period or 1)]) for r in range(period or 1)]
    phase = min(range(len(rotations)), key=rotations.__getitem__)  # e.g. (1, 2), not (2, 1)
    return OverlapPattern(kernel, stride, layers, profile, start, stop, period, rotations[phase], phase)


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


def center_of_mass_crop(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (row, col) of a size x size window centred on the image's brightness centre, kept inside."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape[-2:]
    img = img.reshape(-1, h, w).sum(axis=0)
    size = min(_int("size", size, 1), h, w)
    total = img.sum()
    if total <= 0:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    else:
        cy = float((img.sum(axis=1) * np.arange(h)).sum() / total)
        cx = float((img.sum(axis=0) * np.arange(w)).sum() / total)
    top = int(np.clip(round(cy - (size - 1) / 2), 0, h - size))
    left = int(np.clip(round(cx - (size - 1) / 2), 0, w - size))
    return top, left


# ------------------------------------------------- trained decoders that differ only in upsampling
# Training settings that must match for two checkpoints to be compared (device and eval batch do not matter).
RECIPE_CONFIG_FIELDS = ("epochs", "batch_size", "lr", "beta", "sparsity", "noise", "recon", "seed", "max_steps")


def comparison_recipe(ckpt) -> tuple | None:
    """What a checkpoint shares with its siblings that differ only in decoder upsampling: model name, dataset,
    the spec without `upsample`, and the training settings. None for non-convolutional models."""
    return recipe_of(ckpt.model_name, ckpt.dataset, ckpt.spec, ckpt.config)


def recipe_of(model_name: str, dataset: str, spec, config) -> tuple | None:
    """comparison_recipe from its parts (a ModelSpec and a TrainConfig), e.g. for a set not trained yet."""
    if not spec.is_conv:
        return None
    spec_part = tuple((k, v) for k, v in sorted(spec.to_dict().items()) if k != "upsample")
    cfg = config.to_dict()
    return (model_name, dataset, spec_part, tuple((k, cfg.get(k)) for k in RECIPE_CONFIG_FIELDS))


@dataclass
class UpsampleGroup:
    recipe: tuple
    members: dict  # upsample mode -> key of the first checkpoint with it (in the order given)

    @property
    def model_name(self) -> str:
        return self.recipe[0]

    @property
    def dataset(self) -> str:
        return self.recipe[1]

    @property
    def spec(self) -> dict:
        return dict(self.recipe[2])

    @property
    def config(self) -> dict:
        return dict(self.recipe[3])

    def missing(self, modes) -> list[str]:
        return [m for m in modes if m not in self.members]


def group_by_upsampling(checkpoints) -> list[UpsampleGroup]:
    """Group (key, Checkpoint) pairs whose models differ only in decoder upsampling.

    Returns groups with the most upsampling modes first (ties keep first-seen order); within a group the
    first checkpoint seen for each mode wins.
    """
    groups: dict[tuple, UpsampleGroup] = {}
    for key, ckpt in checkpoints:
        recipe = comparison_recipe(ckpt)
        if recipe is None:
            continue
        group = groups.setdefault(recipe, UpsampleGroup(recipe, {}))
        group.members.setdefault(ckpt.spec.upsample, key)
    return sorted(groups.values(), key=lambda g: -len(g.members))
