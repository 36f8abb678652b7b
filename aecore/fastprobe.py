"""Whether each CPU fast path may run on this machine (guards) and how much it gains here (measurements).

fastpath.py turns these into the process's plan. A guard returns None when its path may run, else why not: the
torch version range the private operators were checked with, the CPU's features, and a numerical self-check of
values and gradients against the plain layer. A measurement times the fast and the plain form, interleaved, on the
shipped models' shapes, and returns plain time / fast time.
"""
from __future__ import annotations

import contextlib
import copy
import time

import torch
import torch.nn.functional as F

from . import bf16, fastconv, fastlinear, fastresize

TESTED_TORCH = ((2, 1), (2, 99))  # the private operators' signatures were checked over this range


# ---- guards: each returns None when the path may run here, else why not ---------------------------------------


def torch_version_problem(version: str = torch.__version__) -> str | None:
    try:
        major_minor = tuple(int(p) for p in version.split("+")[0].split(".")[:2])
    except ValueError:
        return f"unrecognised torch version {version!r}"
    lo, hi = TESTED_TORCH
    return None if lo <= major_minor <= hi else f"torch {version} is outside the tested range {lo}-{hi}"


def _self_check(fast, plain, *inputs) -> str | None:
    """Values and gradients of fast(*inputs) against plain(*inputs); None when they agree."""
    try:
        results = []
        for fn in (fast, plain):
            xs = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
            y = fn(*xs)
            if y is None:
                return "does not apply to its own test shape"
            (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
            results.append([y.detach()] + [t.grad for t in xs if t.grad is not None])
        for a, b in zip(*results):
            if not torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max()) + 1e-5):
                return "disagrees with the plain layer"
        return None
    except Exception as e:  # an operator whose signature changed: the guard's whole point
        return f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"


def _guard_linear() -> str | None:
    if not fastlinear.AVAILABLE:
        return "this PyTorch build has no oneDNN linear"
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, generator=g) for s in ((100, 784), (512, 784), (512,)))
    return torch_version_problem() or _self_check(fastlinear.onednn_linear, F.linear, x, w, b)


def _guard_conv() -> str | None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 32, 15, 15, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(1, 32, 4, 4, generator=g).contiguous(memory_format=torch.channels_last)
    return _self_check(fastconv.taps_conv2d, torch.conv2d, x, w)


def _guard_conv_transpose() -> str | None:
    if fastconv.CONVOLUTION_BACKWARD is None:
        return "this PyTorch has no aten.convolution_backward"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 32, 7, 7, generator=g).contiguous(memory_format=torch.channels_last)
    w3, w4, b = torch.randn(32, 16, 3, 3, generator=g), torch.randn(32, 16, 4, 4, generator=g), torch.randn(16)

    def check(w, stride, padding):  # with a bias: its gradient is computed apart from the native backward
        return _self_check(lambda *a: fastconv.fast_conv_transpose2d(*a, stride, padding),
                           lambda *a: torch.conv_transpose2d(*a, stride, padding), x, w, b)
    return torch_version_problem() or check(w3, 2, 1) or check(w4, 2, 1)  # 7 -> 13 (odd), 7 -> 14 (even)


def _guard_bce() -> str | None:
    from .losses import bernoulli_nll_fast

    g = torch.Generator().manual_seed(0)
    logits, t = torch.randn(8, 784, generator=g) * 5, torch.rand(8, 784, generator=g)
    return _self_check(lambda a, b: bernoulli_nll_fast(a, b),
                       lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"), logits, t)


def _plain_squared_error(logits, target):
    """What the `mse` path replaces: autograd's chain, per image."""
    return (torch.sigmoid(logits) - target).square().flatten(1).sum(1)


def _guard_mse() -> str | None:
    from .losses import squared_error_fast

    g = torch.Generator().manual_seed(0)
    logits, t = torch.randn(8, 1, 28, 28, generator=g) * 5, torch.rand(8, 1, 28, 28, generator=g)
    return torch_version_problem() or _self_check(squared_error_fast, _plain_squared_error, logits, t)


def _plain_resize_conv(x, w, b, size, mode):
    return F.conv2d(F.interpolate(x, size=size, mode=mode), w, b, padding=1)


def _guard_resize_conv() -> str | None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 5, 6, generator=g).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(4, 8, 3, 3, generator=g), torch.randn(4, generator=g)
    for mode, size in (("nearest", (11, 12)), ("bilinear", (11, 13))):  # 2k + 1 and 2k, as the decoders use
        problem = _self_check(lambda *a: fastresize.resize_conv2d(*a, size, mode),
                              lambda *a: _plain_resize_conv(*a, size, mode), x, w, b)
        if problem:
            return f"{mode}: {problem}"
    return None


GUARDS = {"linear": _guard_linear, "conv": _guard_conv, "conv_transpose": _guard_conv_transpose,
          "bce": _guard_bce, "mse": _guard_mse, "channels_last": lambda: None, "infer_channels_last": lambda: None,
          "resize_conv": _guard_resize_conv,
          "bf16": lambda: bf16.guard()}


# ---- measurement: fast vs plain on the shipped models' shapes ---------------------------------------------------


def _time_pair(fast, plain, repeats: int = 7) -> float:
    """plain time / fast time, each the minimum over interleaved repeats of forward + backward."""
    best = {"fast": float("inf"), "plain": float("inf")}
    for i in range(repeats + 1):
        for name, fn in (("fast", fast), ("plain", plain)):
            t0 = time.perf_counter()
            fn()
            if i:  # the first round warms caches and oneDNN's kernel selection
                best[name] = min(best[name], time.perf_counter() - t0)
    return best["plain"] / best["fast"]


def _fwd_bwd(fn, *tensors, grads: int | None = None):
    """forward + backward of fn, with gradients for the first `grads` tensors (all by default)."""
    def run():
        xs = [t.detach().requires_grad_(grads is None or i < grads) for i, t in enumerate(tensors)]
        y = fn(*xs)
        # a dense gradient of ones in the output's memory format, as training's are; through a scalar, because
        # y.backward(tensor) imports torch.fx's symbolic shapes and sympy on first use: 0.38 s and 35 MB in every
        # process that measures (2026-12-03)
        (y * torch.ones_like(y)).sum().backward()
    return run


def _safe_gain(name: str, low_precision: bool = False) -> float:
    try:
        return measure_gain(name, low_precision)
    except Exception:  # a measurement that fails leaves its path off; it must never stop the caller
        return 0.0


def measure_gain(name: str, low_precision: bool = False) -> float:
    """How many times faster the fast form of `name` is than the plain one here (forward + backward).
    low_precision: measure under training's bfloat16 autocast (channels_last only)."""
    g = torch.Generator().manual_seed(0)
    cl = torch.channels_last
    if name == "linear":  # the MLP VAE's 784 -> 512 layer, batch 100
        x, w, b = torch.randn(100, 784, generator=g), torch.randn(512, 784, generator=g), torch.randn(512, generator=g)
        return _time_pair(_fwd_bwd(fastlinear.onednn_linear, x, w, b), _fwd_bwd(F.linear, x, w, b))
    if name == "conv":  # the conv VAE's last layer, Conv(32 -> 1, k4) on 31x31, batch 32
        x = torch.randn(32, 32, 31, 31, generator=g).contiguous(memory_format=cl)
        w, b = torch.randn(1, 32, 4, 4, generator=g).contiguous(memory_format=cl), torch.randn(1, generator=g)
        return _time_pair(_fwd_bwd(fastconv.taps_conv2d, x, w, b), _fwd_bwd(torch.conv2d, x, w, b))
    if name == "conv_transpose":  # the conv VAE's 15 -> 31 layer, batch 32, with its bias (without one, the native
        # form is faster: 0.93-0.97x for the even-size form, against 1.17-1.25x with it)
        x = torch.randn(32, 64, 15, 15, generator=g).contiguous(memory_format=cl)
        w, b = torch.randn(64, 32, 3, 3, generator=g).contiguous(memory_format=cl), torch.randn(32, generator=g)
        return _time_pair(_fwd_bwd(lambda *a: fastconv.fast_conv_transpose2d(*a, 2), x, w, b),
                          _fwd_bwd(lambda *a: torch.conv_transpose2d(*a, 2), x, w, b))
    if name == "bce":
        from .losses import bernoulli_nll_fast

        logits, t = torch.randn(100, 784, generator=g), torch.rand(100, 784, generator=g)
        plain = lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none")  # noqa: E731
        return _time_pair(_fwd_bwd(bernoulli_nll_fast, logits, t, grads=1), _fwd_bwd(plain, logits, t, grads=1))
    if name == "mse":  # the linear AE's loss, batch 100
        from .losses import squared_error_fast

        logits, t = torch.randn(100, 1, 28, 28, generator=g), torch.rand(100, 1, 28, 28, generator=g)
        return _time_pair(_fwd_bwd(squared_error_fast, logits, t, grads=1),
                          _fwd_bwd(_plain_squared_error, logits, t, grads=1))
    if name == "channels_last":  # the conv VAE's encoder and decoder, NHWC vs NCHW, batch 32
        from .models import ModelSpec, build_model

        with torch.random.fork_rng(devices=[]):  # building initialises weights from the global RNG
            nchw = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))
        nhwc = copy.deepcopy(nchw).to(memory_format=cl)
        x = torch.rand(32, 1, 28, 28, generator=g)
        precision = bf16.autocast if low_precision else contextlib.nullcontext

        def plain_layers(m):  # no fast paths here: they would ask for the plan being made
            def forward(inp):
                with precision():
                    return m.decoder(m.fc_mu(m.encoder(inp))).float()
            return forward
        return _time_pair(_fwd_bwd(plain_layers(nhwc), x.contiguous(memory_format=cl)),
                          _fwd_bwd(plain_layers(nchw), x), 3)
    if name == "bf16":
        return bf16.measure_gain()
    if name == "infer_channels_last":  # the conv VAE's decoder without gradients, batch 100 (IW-NLL, the pages)
        from .fastpath import _NhwcInputs  # the dispatch's own NHWC step, measured alone
        from .models import ModelSpec, build_model

        with torch.random.fork_rng(devices=[]):
            decoder = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True)).decoder
        z = torch.randn(100, 2, generator=g)

        def forward(nhwc: bool):
            def run():
                with torch.no_grad(), (_NhwcInputs() if nhwc else contextlib.nullcontext()):
                    decoder(z)
            return run
        return _time_pair(forward(True), forward(False), 5)
    if name == "resize_conv":  # the z = 2 bilinear VAE's 15 -> 31 layer, 64 -> 32 channels, batch 32 (1.6x here;
        # 1.2-1.4x forward only at batch 100; the narrow conv AE's layers ~2x either way)
        x = torch.randn(32, 64, 15, 15, generator=g).contiguous(memory_format=cl)
        w, b = torch.randn(32, 64, 3, 3, generator=g) * 0.05, torch.randn(32, generator=g)
        return _time_pair(_fwd_bwd(lambda *a: fastresize.resize_conv2d(*a, (31, 31), "bilinear"), x, w, b),
                          _fwd_bwd(lambda *a: _plain_resize_conv(*a, (31, 31), "bilinear"), x, w, b))
    raise ValueError(f"unknown fast path {name!r}")
