"""Upsampling layers: the one place the conv decoders differ in the checkerboard comparison. Each doubles the
spatial size (or doubles it plus one) with a transposed convolution, a resize and a convolution, or sub-pixel
convolution.
"""
from __future__ import annotations

import torch
from torch import nn

from . import fastpath

UPSAMPLE_MODES = ("transposed", "transposed4", "nearest", "bilinear", "subpixel")
UPSAMPLE_HELP = {
    "transposed": "transposed conv, kernel 3, stride 2 (the lecture's)",
    "transposed4": "transposed conv, kernel 4, stride 2",
    "nearest": "nearest-neighbour resize, then 3x3 conv",
    "bilinear": "bilinear resize, then 3x3 conv",
    "subpixel": "3x3 conv to 4x channels, then PixelShuffle (ICNR init)",
}


def upsample_block(cin: int, cout: int, mode: str, size_in: tuple[int, int], size_out: tuple[int, int]) -> nn.Module:
    """Double the spatial size (size_out is 2*size_in or 2*size_in + 1 per axis) with the chosen method."""
    extra = tuple(o - 2 * i for i, o in zip(size_in, size_out))
    if any(e not in (0, 1) for e in extra):
        from .models import SpecError  # here, not at the top: models imports this module

        raise SpecError(f"upsampling goes from {size_in} to 2x or 2x+1, not {size_out}")
    if mode == "transposed":  # k3 s2: out = 2k + 1 - 2p + op
        pad = tuple(1 - e for e in extra)
        return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=pad, output_padding=pad)
    if mode == "transposed4":  # k4 s2 p1: out = 2k + op
        return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, output_padding=extra)
    if mode in ("nearest", "bilinear"):
        resize = nn.Upsample(size=size_out, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
        return ResizeConv(resize, nn.Conv2d(cin, cout, 3, padding=1))
    return SubPixelUpsample(cin, cout, extra)


class ResizeConv(nn.Sequential):
    """Resize, then 3x3 conv (a Sequential: checkpoints keep their keys); on the CPU, where the plan has it, both
    at the input's resolution (fastresize.py: 1.2-1.4x without gradients, 1.6-2x in training)."""

    def forward(self, x):
        resize, conv = self
        y = fastpath.resize_conv(x, resize, conv)
        return super().forward(x) if y is None else y


class SubPixelUpsample(nn.Module):
    """3x3 conv to 4*cout channels, PixelShuffle(2); ICNR init so it starts as nearest-resize + conv.

    For odd targets (2k+1) the last row/column is replicated, like the transposed conv's output_padding. The conv's
    weights are stored in PixelShuffle's channel order, and `shuffle` is the plain form (the tests compare against
    it); forward computes the same in a faster order (`shuffle_pad`).
    """

    def __init__(self, cin: int, cout: int, extra: tuple[int, int] = (0, 0)):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.pad = (0, extra[1], 0, extra[0])
        self._icnr_init(cout)

    @torch.no_grad()
    def _icnr_init(self, cout: int) -> None:
        base = nn.Conv2d(self.conv.in_channels, cout, 3, padding=1)
        # PixelShuffle takes channels c*4 .. c*4+3 to the 2x2 block of output channel c: give them one kernel.
        self.conv.weight.copy_(base.weight.repeat_interleave(4, dim=0))
        self.conv.bias.copy_(base.bias.repeat_interleave(4, dim=0))

    def forward(self, x):
        """The same as pad(shuffle(conv(x))), but the conv's output channels are regrouped first, from the
        shuffle's order (c, a, b) to (a, b, c), so that in NHWC the shuffle copies runs of c channels."""
        w, b, c = self.conv.weight, self.conv.bias, self.conv.out_channels // 4
        w = w.view(c, 4, *w.shape[1:]).transpose(0, 1).reshape(w.shape)
        b = b.view(c, 4).t().reshape(-1) if b is not None else None
        return shuffle_pad(nn.functional.conv2d(x, w, b, padding=1), self.pad)


def shuffle_pad(y: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """PixelShuffle(2) of y, whose channels are in (a, b, c) order (channel (2a + b) * C + c goes to pixel
    (2h + a, 2w + b) of channel c), then replicate-padding of the last row / column (`pad` as F.pad's), as one copy
    into the padded output, in y's memory format. In NHWC, PixelShuffle and the pad took 8.4 ms of the z = 2 sub-pixel
    VAE's 32 ms decode of 100 codes, and a first one-copy form with the shuffle's own channel order 3.9 ms (its
    innermost runs were 1 float long); this one takes ~1.1 ms (2-core Xeon, 2026-12-03)."""
    n, c4, h, w = y.shape
    c, extra_h, extra_w = c4 // 4, pad[3], pad[1]
    fmt = torch.channels_last if y.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = torch.empty(n, c, 2 * h + extra_h, 2 * w + extra_w, dtype=y.dtype, device=y.device, memory_format=fmt)
    out[:, :, : 2 * h, : 2 * w].view(n, c, h, 2, w, 2).copy_(y.view(n, 2, 2, c, h, w).permute(0, 3, 4, 1, 5, 2))
    if extra_h:
        out[:, :, 2 * h, : 2 * w] = out[:, :, 2 * h - 1, : 2 * w]
    if extra_w:
        out[:, :, :, 2 * w] = out[:, :, :, 2 * w - 1]
    return out
