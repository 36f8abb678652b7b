"""CPU fast paths for two slow spots of oneDNN in the conv VAE's decoder; `fastpath.py` decides where they run.

Each function returns the layer's output computed in an equivalent, faster form, or None where it does not apply
(the caller then runs the native op). tests/test_fastpath.py checks outputs and gradients against the plain layers
and that the paths are really taken.
"""
from __future__ import annotations

import math

import torch

# Two kinds of layer, computed in an equivalent, faster form (same sums regrouped; parameters untouched):
#
# 1. conv2d with few output channels, like the conv VAE's last Conv(32 -> 1, k4). oneDNN vectorises a
#    channels_last conv over output channels in blocks of 16, so 1 output channel leaves 15 of 16 lanes idle:
#    25-30 % of the conv VAE's step for ~5 % of its FLOPs. Output pixel (R*a + p, R*b + q) is output channel
#    (p, q) of a stride-R conv whose (k + R - 1)^2 kernel is the k^2 kernel shifted by (p, q), zeros elsewhere;
#    PixelShuffle(R) puts the R*R channels back in place. R = 4: 16 channels, 3x the multiply-adds, all lanes
#    busy. Forward + backward, batch 100: 1.95x for Conv(32 -> 1, k4), 1.4x for Conv(32 -> 3, k4); 3x3 kernels
#    gain nothing (0.9-1.1x) and stay as they are.
# 2. stride-2 transposed convs with an odd output size (2k + 1, the conv VAE's 7 -> 15 -> 31). oneDNN runs their
#    forward at ~1/2.5 of the FLOP rate it reaches for even sizes. So the forward computes the even size (one more
#    output row and column, output_padding + 1) and crops it: the first 2k + 1 rows and columns are the same sums.
#    Forward, batch 100: 2.5x (AVX2) / 2.7x (AVX-512) for the conv VAE's 15 -> 31 layer, 1.8-2x for 7 -> 15.
#    The backward is the native odd-size one (oneDNN's transposed-conv backward is fast; the even-size backward of
#    the cropped output is not), through a custom autograd.Function. Whole conv VAE step, batch 100: 1.11-1.33x
#    (AVX2), 1.16x (AVX-512, float32). An earlier form, four convs by output phase, lost (0.7-0.84x) and is gone.
# Gradients agree with the plain layers to ~1e-6 (relative); the forward to float rounding.


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _cpu_f32_4d(input, weight) -> bool:
    return (isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor) and input.dim() == 4
            and weight.dim() == 4 and input.device.type == "cpu" and input.dtype == weight.dtype == torch.float32)


_PHASE_INDEX: dict[tuple[int, int, int, int], torch.Tensor] = {}


def _phase_index(oc: int, kh: int, kw: int, r: int) -> torch.Tensor:
    """(oc*r*r, kh+r-1, kw+r-1) positions into the flattened (oc*kh*kw) kernel plus one trailing zero."""
    key = (oc, kh, kw, r)
    if key not in _PHASE_INDEX:
        with torch.inference_mode(False):  # cached: a first call under inference_mode must not poison training
            _PHASE_INDEX[key] = _make_phase_index(oc, kh, kw, r)
    return _PHASE_INDEX[key]


def _make_phase_index(oc: int, kh: int, kw: int, r: int) -> torch.Tensor:
    idx = torch.full((oc, r, r, kh + r - 1, kw + r - 1), oc * kh * kw, dtype=torch.long)
    for o in range(oc):
        taps = torch.arange(o * kh * kw, (o + 1) * kh * kw).view(kh, kw)
        for p in range(r):
            for q in range(r):
                idx[o, p, q, p:p + kh, q:q + kw] = taps
    return idx.flatten(0, 2)


def _phase_factor(oc: int, kh: int, kw: int, h_out: int, w_out: int) -> int:
    """R in (1, 2, 4) with the least predicted cost: wasted vector lanes x extra multiply-adds; 1 = leave as is."""
    lanes = lambda ch: math.ceil(ch / 16) * 16 / ch  # noqa: E731
    best, best_cost = 1, lanes(oc)
    for r in (2, 4):
        if h_out % r == 0 and w_out % r == 0:
            cost = lanes(oc * r * r) * (kh + r - 1) * (kw + r - 1) / (kh * kw)
            if cost * 2 <= best_cost:  # only where the model predicts at least 2x
                best, best_cost = r, cost
    return best


def phased_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Fast path 1 (see above), or None where it does not apply."""
    if not (_cpu_f32_4d(input, weight) and input.is_contiguous(memory_format=torch.channels_last)
            and groups == 1 and weight.shape[0] < 16
            and not isinstance(padding, str) and _pair(stride) == (1, 1) and _pair(dilation) == (1, 1)):
        return None
    oc, ic, kh, kw = weight.shape
    ph, pw = _pair(padding)
    h_out, w_out = input.shape[2] + 2 * ph - kh + 1, input.shape[3] + 2 * pw - kw + 1
    r = _phase_factor(oc, kh, kw, h_out, w_out) if h_out > 0 and w_out > 0 and kh * kw >= 16 else 1
    if r == 1:
        return None
    flat = torch.cat([weight.transpose(0, 1).reshape(ic, -1), weight.new_zeros(ic, 1)], dim=1)
    phased = flat[:, _phase_index(oc, kh, kw, r)].transpose(0, 1).contiguous(memory_format=torch.channels_last)
    y = torch.conv2d(input, phased, None if bias is None else bias.repeat_interleave(r * r), r, (ph, pw))
    return torch.pixel_shuffle(y, r)


def _conv_transpose_even(x, w, b, stride, padding, output_padding):
    """The odd-size output as the top-left of the even-size one (output_padding + 1 appends a row and a column)."""
    x = x.contiguous(memory_format=torch.channels_last)  # e.g. the (N, 64, 7, 7) view after nn.Unflatten
    y = torch.conv_transpose2d(x, w, b, stride, padding, (output_padding[0] + 1, output_padding[1] + 1))
    return y[:, :, :-1, :-1].contiguous(memory_format=torch.channels_last)


# The native transposed-conv backward, called directly (an aten operator, stable since torch 1.11). fastpath.py
# checks that it exists and agrees with autograd before this path is ever used.
CONVOLUTION_BACKWARD = getattr(torch.ops.aten, "convolution_backward", None)


class _EvenConvTranspose2d(torch.autograd.Function):
    """Forward at the even size, cropped (fast path 2); backward by the native transposed-conv backward."""

    @staticmethod
    def forward(ctx, input, weight, bias, stride, padding, output_padding):
        ctx.save_for_backward(input, weight)
        ctx.conf = stride, padding, output_padding, None if bias is None else list(bias.shape)
        return _conv_transpose_even(input, weight, bias, stride, padding, output_padding)

    @staticmethod
    def backward(ctx, grad):
        input, weight = ctx.saved_tensors
        stride, padding, output_padding, bias_sizes = ctx.conf
        need = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], bias_sizes is not None and ctx.needs_input_grad[2]]
        gi, gw, gb = CONVOLUTION_BACKWARD(grad, input, weight, bias_sizes, list(stride), list(padding), [1, 1], True,
                                          list(output_padding), 1, need)
        return gi, gw, gb, None, None, None


def even_conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Fast path 2 (see above), or None where it does not apply."""
    if not (_cpu_f32_4d(input, weight) and groups == 1 and _pair(stride) == (2, 2)
            and _pair(dilation) == (1, 1) and weight.shape[1] >= 16 and min(weight.shape[2:]) >= 2):
        return None
    stride, padding, output_padding = (2, 2), _pair(padding), _pair(output_padding)
    oh = (input.shape[2] - 1) * 2 - 2 * padding[0] + weight.shape[2] + output_padding[0]
    ow = (input.shape[3] - 1) * 2 - 2 * padding[1] + weight.shape[3] + output_padding[1]
    if oh % 2 == 0 or ow % 2 == 0 or output_padding != (0, 0):  # even sizes are oneDNN's fast case already
        return None
    return _EvenConvTranspose2d.apply(input, weight, bias, stride, padding, output_padding)
