"""CPU fast paths for two slow spots of oneDNN in the conv VAE's decoder; `fastpath.py` decides where they run.

Each function returns the layer's output computed in an equivalent, faster form, or None where it does not apply
(the caller then runs the native op). tests/test_fastpath.py checks outputs and gradients against the plain layers
and that the paths are really taken.
"""
from __future__ import annotations

import torch

# Two kinds of layer, computed in an equivalent, faster form (same sums regrouped; parameters untouched):
#
# 1. conv2d with few output channels, like the conv VAE's last Conv(32 -> 1, k4). oneDNN vectorises a
#    channels_last conv over output channels in blocks of 16, so 1 output channel leaves 15 of 16 lanes idle:
#    25-30 % of the conv VAE's step for ~5 % of its FLOPs. Instead, one matrix product applies every kernel tap
#    to every input pixel (taps x pixels: the lanes run over pixels, all busy) and the output is the sum of the
#    tap planes, each shifted by its tap's offset; the backward is the same two products transposed. Forward +
#    backward, Conv(32 -> 1, k4) on 31x31, batch 100, AVX2: 4.6-5.6 ms against 11 ms native and 8.8-9.3 ms for
#    an earlier form (a stride-4 conv with a 7x7 kernel by output phase, then PixelShuffle). It wins only for one
#    output channel (taps <= 16) over >= 8 input channels: 1.0-1.5x for 3x3 kernels; Conv(32 -> 3, k3) 0.68-0.91x,
#    Conv(8 -> 4, k3) 0.45x, Conv(1 -> 8, k3) 0.18x (the tap planes outgrow the work), so those stay native.
#    The forward takes the product as pixels x taps (NHWC) and sums each kernel row along a diagonal view of it:
#    1.8 against 3.3 ms for the 32 -> 1 layer at batch 100 (the taps x pixels product was 3x slower; AVX-512,
#    2026-12-03), ~1.5 ms less per 100-code decode of the conv VAE.
# 2. transposed convs on channels_last inputs, two fixes:
#    a. oneDNN runs the forward of a stride-2 transposed conv with an odd output size (2k + 1, the conv VAE's
#       7 -> 15 -> 31) at ~1/2.5 of the FLOP rate it reaches for even sizes. So the forward computes the even size
#       (output_padding + 1: one more row and column) and crops it: the first 2k + 1 rows and columns are the
#       same sums. Forward, batch 100: 2.5x (AVX2) / 2.7x (AVX-512) for 15 -> 31, 1.8-2x for 7 -> 15. (An earlier
#       form, four convs by output phase, lost: 0.7-0.84x.)
#    b. the native backward, asked for the bias gradient too, takes 4 ms longer for the 15 -> 31 layer (batch
#       100, AVX2; NCHW does not pay this) than for the input and weight gradients alone; the bias gradient is
#       one sum over batch and pixels (0.3 ms). So the backward is the native one without the bias, plus that sum:
#       1.45x (AVX2) / 1.6x (AVX-512) for the 15 -> 31 layer at batch 32, 1.06-1.3x for even sizes.
#    c. the forward with its bias takes twice the time of the same op without it plus one in-place add (NHWC,
#       batch 100, AVX-512: 14.0 against 7.5 ms for the 15 -> 31 layer of the 4x4-kernel decoder, 6.3 against
#       3.0 ms for its 7 -> 15 layer; 2026-12-03). So the bias is added apart, in the forward as in 2b's backward.
#    Throughput of the conv VAE (bench/throughput.py, AVX2 kernels): 1.17x of the tutorial loop before 2a, 1.33x
#    with 2a, 1.39x with fast path 1 too, 1.57x with 2b.
# Gradients agree with the plain layers to ~1e-6 (relative); the forward to float rounding.


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _cpu_f32_4d(input, weight) -> bool:
    return (isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor) and input.dim() == 4
            and weight.dim() == 4 and input.device.type == "cpu" and input.dtype == weight.dtype == torch.float32)


TAPS_BUFFER_LIMIT = 64 * 2**20  # bytes of tap planes; bigger batches take the native conv (bounded memory)


class _TapsConv2d(torch.autograd.Function):
    """Stride-1 conv2d as one GEMM over all kernel taps and a shifted sum of the tap planes (fast path 1)."""

    @staticmethod
    def forward(ctx, input, weight, bias, padding):
        n, c, h, w = input.shape
        oc, _, kh, kw = weight.shape
        (ph, pw), ho, wo = padding, h + 2 * padding[0] - kh + 1, w + 2 * padding[1] - kw + 1
        x2d = input.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view: the input is channels_last
        taps = weight.permute(0, 2, 3, 1).reshape(oc * kh * kw, c)
        # every tap at every pixel, pixels by taps (NHWC): the product in this order is 3x faster than taps by pixels
        planes = (x2d @ taps.t()).view(n, h, w, oc * kh * kw)
        if ph or pw:
            planes = torch.nn.functional.pad(planes, (0, 0, pw, pw, ph, ph))
        hp, wp, k = planes.shape[1:]
        out = planes.new_empty(n, ho, wo, oc)
        for o in range(oc):
            acc = None
            for i in range(kh):  # kernel row i: a diagonal view whose (y, x, j) is tap (o, i, j) at pixel (y+i, x+j)
                row = planes.as_strided((n, ho, wo, kw), (hp * wp * k, wp * k, k, k + 1),
                                        planes.storage_offset() + i * wp * k + (o * kh + i) * kw).sum(3)
                acc = row if acc is None else acc.add_(row)
            out[..., o] = acc if bias is None else acc.add_(bias[o])
        ctx.save_for_backward(x2d, taps)
        ctx.dims = n, c, h, w, oc, kh, kw, ph, pw, bias is not None
        return out.permute(0, 3, 1, 2)  # (N, C, H, W) in channels_last memory

    @staticmethod
    def backward(ctx, grad):
        x2d, taps = ctx.saved_tensors
        n, c, h, w, oc, kh, kw, ph, pw, has_bias = ctx.dims
        ho, wo = grad.shape[2:]
        g = grad.permute(1, 0, 2, 3)
        planes = grad.new_zeros(oc, kh, kw, n, h + 2 * ph, w + 2 * pw)
        for i in range(kh):
            for j in range(kw):
                planes[:, i, j, :, i:i + ho, j:j + wo] = g
        planes = planes[..., ph:ph + h, pw:pw + w].reshape(oc * kh * kw, n * h * w)
        gi = (planes.t() @ taps).view(n, h, w, c).permute(0, 3, 1, 2) if ctx.needs_input_grad[0] else None
        gw = (planes @ x2d).view(oc, kh, kw, c).permute(0, 3, 1, 2) if ctx.needs_input_grad[1] else None
        gb = grad.sum((0, 2, 3)) if has_bias and ctx.needs_input_grad[2] else None
        return gi, gw, gb, None


def taps_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Fast path 1 (see above), or None where it does not apply."""
    if not (_cpu_f32_4d(input, weight) and input.is_contiguous(memory_format=torch.channels_last)
            and groups == 1 and weight.shape[0] * weight.shape[2] * weight.shape[3] <= 16 and weight.shape[1] >= 8
            and not isinstance(padding, str) and _pair(stride) == (1, 1) and _pair(dilation) == (1, 1)):
        return None
    (n, _, h, w), (oc, _, kh, kw), (ph, pw) = input.shape, weight.shape, _pair(padding)
    if h + 2 * ph < kh or w + 2 * pw < kw or oc * kh * kw * n * (h + 2 * ph) * (w + 2 * pw) * 4 > TAPS_BUFFER_LIMIT:
        return None
    return _TapsConv2d.apply(input, weight, bias, (ph, pw))


def _conv_transpose_forward(x, w, b, stride, padding, output_padding, odd):
    if odd:  # 2a: the odd size as the top-left of the even one
        y = torch.conv_transpose2d(x, w, None, stride, padding, (output_padding[0] + 1, output_padding[1] + 1))
        y = y[:, :, :-1, :-1].contiguous(memory_format=torch.channels_last)
    else:
        y = torch.conv_transpose2d(x, w, None, stride, padding, output_padding)
    return y if b is None else y.add_(b.view(1, -1, 1, 1))  # 2c: the bias apart


# The native transposed-conv backward, called directly (an aten operator, stable since torch 1.11). fastpath.py
# checks that it exists and agrees with autograd before this path is ever used.
CONVOLUTION_BACKWARD = getattr(torch.ops.aten, "convolution_backward", None)


class _ConvTranspose2d(torch.autograd.Function):
    """Fast path 2: the forward by 2a where it applies, the backward by 2b."""

    @staticmethod
    def forward(ctx, input, weight, bias, stride, padding, output_padding, odd):
        ctx.save_for_backward(input, weight)
        ctx.conf = stride, padding, output_padding, bias is not None
        return _conv_transpose_forward(input, weight, bias, stride, padding, output_padding, odd)

    @staticmethod
    def backward(ctx, grad):
        input, weight = ctx.saved_tensors
        stride, padding, output_padding, has_bias = ctx.conf
        need = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False]
        gi, gw, _ = CONVOLUTION_BACKWARD(grad, input, weight, None, list(stride), list(padding), [1, 1], True,
                                         list(output_padding), 1, need)
        gb = grad.sum((0, 2, 3)) if has_bias and ctx.needs_input_grad[2] else None
        return gi, gw, gb, None, None, None, None


def fast_conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Fast path 2 (see above), or None where it does not apply."""
    if not (_cpu_f32_4d(input, weight) and groups == 1 and _pair(dilation) == (1, 1)
            and not isinstance(padding, str)):
        return None
    stride, padding, output_padding = _pair(stride), _pair(padding), _pair(output_padding)
    oh = (input.shape[2] - 1) * stride[0] - 2 * padding[0] + weight.shape[2] + output_padding[0]
    ow = (input.shape[3] - 1) * stride[1] - 2 * padding[1] + weight.shape[3] + output_padding[1]
    odd = (stride == (2, 2) and output_padding == (0, 0) and oh % 2 == 1 and ow % 2 == 1
           and weight.shape[1] >= 16 and min(weight.shape[2:]) >= 2)
    if odd:
        input = input.contiguous(memory_format=torch.channels_last)  # e.g. the (N, 64, 7, 7) view after Unflatten
    elif not input.is_contiguous(memory_format=torch.channels_last) or input.shape[1] == 1:
        return None  # 2b is a channels_last fix; NCHW's own backward is fine
    return _ConvTranspose2d.apply(input, weight, bias, stride, padding, output_padding, odd)
