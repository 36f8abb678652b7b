"""Transposed convolution, step by step, and the checkerboard artifacts it causes.

Follows Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill 2016).
All maps are 2-D numpy arrays indexed (row, col); sizes are in pixels. No Streamlit here.

This module keeps the transposed-convolution arithmetic and the overlap maps. The Distill decoder stacks and the
grouping of trained decoders live in aecore.distill, the spectrum and the artifact score in aecore.artifacts;
their names are re-exported below so `from aecore.checkerboard import artifact_score, ...` keeps working.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from aecore.artifacts import artifact_score, artifact_spectrum, spectrum_for_display  # noqa: F401 (re-export)
from aecore.distill import (  # noqa: F401 (re-export)
    DISTILL_CONFIGS, RECIPE_CONFIG_FIELDS, UpsampleGroup, comparison_recipe, distill_decoder, distill_outputs,
    group_by_upsampling, recipe_of)


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
