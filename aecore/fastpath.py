"""Which CPU fast path runs on this machine, decided once per process by measurement, and the dispatch to them.

The fast paths (fastlinear.py, fastconv.py, the BCE form in losses.py, channels_last for conv models) were tuned
on an AVX-512 AMD EPYC; on another CPU one can lose (issue #10: the conv VAE fell from 1.49x to 1.32x on AVX2).
So each is used only where it wins *here*:

1. a guard: the torch version range the private/low-level operator was tested with, the CPU capability PyTorch
   reports, and a numerical self-check against the plain layer (values and gradients). A failed guard turns the
   path off; nothing else can turn it on.
2. a short measurement (~1 s in all): the fast and the plain form of each, interleaved, on the shapes the shipped
   models use; a path stays on only if it is at least `MIN_GAIN` faster.

`plan()` returns the decision (computed on first use); `use_plan()` installs one (a training worker gets its
parent's, so it does not measure again); `AECORE_FASTPATHS=none|all|name,name` overrides the measurement
(benchmarks, tests). `TAKEN` counts the calls each path actually served, so tests can assert what ran.
Models enter `fast_kernels(model)` in their own encode/decode methods (models.py): training, evaluation and every
page use the same forms.
"""
from __future__ import annotations

import collections
import contextlib
import copy
import os
import threading
import time
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import bf16, fastconv, fastlinear

TESTED_TORCH = ((2, 1), (2, 99))  # the private operators' signatures were checked over this range
MIN_GAIN = 1.08  # a fast path must beat the plain form by 8 % in the measurement to be used
TAKEN: collections.Counter = collections.Counter()  # calls served by each fast path (name -> count)


@dataclass(frozen=True)
class Plan:
    linear: bool = False  # large nn.Linear through oneDNN's inner product (fastlinear.py)
    conv: bool = False  # few-output-channel conv2d by phases (fastconv.py, fast path 1)
    conv_transpose: bool = False  # odd-size stride-2 transposed conv by phases (fastconv.py, fast path 2)
    bce: bool = False  # the vectorised Bernoulli NLL (losses.py)
    channels_last: bool = False  # conv models in NHWC memory format (training)
    infer_channels_last: bool = False  # conv layers' inputs in NHWC for passes without gradients (eval, pages)
    bf16: bool = False  # training forward passes in bfloat16 autocast, on CPUs with bfloat16 units (bf16.py)
    reason: str = ""  # how it was decided, for benchmarks and bug reports

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        return cls(**{k: d[k] for k in (f.name for f in fields(cls)) if k in d})


PATHS = tuple(f.name for f in fields(Plan) if f.name != "reason")
_plan: Plan | None = None
_plan_lock = threading.Lock()


def plan() -> Plan:
    """This process's plan: installed, forced by AECORE_FASTPATHS, or measured once on first use."""
    global _plan
    if _plan is None:
        with _plan_lock:
            if _plan is None:  # the first call may come from inside inference_mode (a page drawing a model)
                with torch.inference_mode(False), torch.enable_grad():
                    _plan = _choose(os.environ.get("AECORE_FASTPATHS", "auto").strip().lower())
    return _plan


def use_plan(p: Plan | dict | None) -> Plan:
    """Install a plan (None: forget it, so the next `plan()` decides again)."""
    global _plan
    _plan = Plan.from_dict(p) if isinstance(p, dict) else p
    return _plan


def _choose(mode: str) -> Plan:
    guards = {name: guard() for name, guard in GUARDS.items()}
    ok = {name: not problem for name, problem in guards.items()}
    off = "; ".join(f"{n}: {p}" for n, p in guards.items() if p)
    if mode == "none":
        return Plan(reason="AECORE_FASTPATHS=none")
    if mode != "auto":
        wanted = set(PATHS) if mode == "all" else {w.strip() for w in mode.split(",")}
        return Plan(**{n: n in wanted and ok[n] for n in PATHS}, reason=f"AECORE_FASTPATHS={mode}" +
                    (f" (guarded off: {off})" if off else ""))
    # bf16 first: if training will run in bfloat16, the memory format is measured in bfloat16 too (NHWC gained
    # 1.27x on the conv VAE's bf16 step where the float32 measurement said 0.97x)
    low = ok["bf16"] and _safe_gain("bf16") >= bf16.MIN_GAIN
    gains = {n: _safe_gain(n, low) if ok[n] else 0.0 for n in PATHS}
    why = ", ".join(f"{n} {g:.2f}x" for n, g in gains.items() if ok[n])
    return Plan(**{n: gains[n] >= (bf16.MIN_GAIN if n == "bf16" else MIN_GAIN) for n in PATHS},
                reason=f"measured on {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads: "
                       f"{why}" + (f"; guarded off: {off}" if off else ""))


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
    return _self_check(fastconv.phased_conv2d, torch.conv2d, x, w)


def _guard_conv_transpose() -> str | None:
    if fastconv.CONVOLUTION_BACKWARD is None:
        return "this PyTorch has no aten.convolution_backward"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 32, 7, 7, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(32, 16, 3, 3, generator=g)
    return torch_version_problem() or _self_check(
        lambda a, b: fastconv.phased_conv_transpose2d(a, b, None, 2, 1),  # 7 -> 13: an odd size
        lambda a, b: torch.conv_transpose2d(a, b, None, 2, 1), x, w)


def _guard_bce() -> str | None:
    from .losses import bernoulli_nll_fast

    g = torch.Generator().manual_seed(0)
    logits, t = torch.randn(8, 784, generator=g) * 5, torch.rand(8, 784, generator=g)
    return _self_check(lambda a, b: bernoulli_nll_fast(a, b),
                       lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"), logits, t)


GUARDS = {"linear": _guard_linear, "conv": _guard_conv, "conv_transpose": _guard_conv_transpose,
          "bce": _guard_bce, "channels_last": lambda: None, "infer_channels_last": lambda: None,
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
        fn(*xs).sum().backward()
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
        w = torch.randn(1, 32, 4, 4, generator=g).contiguous(memory_format=cl)
        return _time_pair(_fwd_bwd(fastconv.phased_conv2d, x, w), _fwd_bwd(torch.conv2d, x, w))
    if name == "conv_transpose":  # the conv VAE's 15 -> 31 layer, batch 32
        x = torch.randn(32, 64, 15, 15, generator=g).contiguous(memory_format=cl)
        w = torch.randn(64, 32, 3, 3, generator=g).contiguous(memory_format=cl)
        return _time_pair(_fwd_bwd(lambda a, b: fastconv.phased_conv_transpose2d(a, b, None, 2), x, w),
                          _fwd_bwd(lambda a, b: torch.conv_transpose2d(a, b, None, 2), x, w))
    if name == "bce":
        from .losses import bernoulli_nll_fast

        logits, t = torch.randn(100, 784, generator=g), torch.rand(100, 784, generator=g)
        plain = lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none")  # noqa: E731
        return _time_pair(_fwd_bwd(bernoulli_nll_fast, logits, t, grads=1), _fwd_bwd(plain, logits, t, grads=1))
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
    raise ValueError(f"unknown fast path {name!r}")


# ---- dispatch --------------------------------------------------------------------------------------------------


def _counted(name, fn):
    def run(*args, **kwargs):
        if not getattr(plan(), name):
            return None
        out = fn(*args, **kwargs)
        if out is not None:
            TAKEN[name] += 1
        return out
    return run


_FAST = {F.linear: _counted("linear", fastlinear.onednn_linear),
         torch.conv2d: _counted("conv", fastconv.phased_conv2d),
         torch.conv_transpose2d: _counted("conv_transpose", fastconv.phased_conv_transpose2d)}


_CONVS = (torch.conv2d, torch.conv_transpose2d)


def _nhwc_input(args: tuple) -> tuple:
    """A conv call's arguments with its input in NHWC, so oneDNN's NHWC kernels run (2-4x for the transposed
    convs of the conv VAE's decoder, forward only; counted as a fast path taken)."""
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 4 and x.device.type == "cpu":
        TAKEN["infer_channels_last"] += 1  # a no-op after the first conv, whose output is NHWC already
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return args


class _NhwcInputs(TorchFunctionMode):
    """Only the NHWC inputs, for measuring that path alone."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*(_nhwc_input(args) if func in _CONVS else args), **(kwargs or {}))


class _CpuFastPaths(TorchFunctionMode):
    """Within this block, linear / conv2d / conv_transpose2d calls that fit take the faster forms."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _CONVS and args and not torch.is_grad_enabled() and plan().infer_channels_last:
            args = _nhwc_input(args)
        fast = _FAST.get(func)
        if fast is not None:
            out = fast(*args, **kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)


def _can_gain(model) -> bool:
    """Whether some layer of model can take a fast path under the plan (remembered per model and plan: it is asked
    on every call)."""
    p = plan()
    cached = model.__dict__.get("_aecore_fast")
    if cached is None or cached[0] is not p:
        conv_gain = model.spec.is_conv and (p.conv or p.conv_transpose or p.infer_channels_last)
        gain = conv_gain or (p.linear and fastlinear.has_large_linear(model))
        model.__dict__["_aecore_fast"] = cached = (p, bool(gain))
    return cached[1]


def fast_kernels(model):
    """A fresh context manager for a forward of model: `_CpuFastPaths` where the model is on the CPU and some layer
    can gain (the mode's Python dispatch costs ~5 % of a linear AE's step, which has nothing to gain)."""
    try:
        on_cpu = next(model.parameters()).device.type == "cpu"
    except StopIteration:
        on_cpu = False
    return _CpuFastPaths() if on_cpu and _can_gain(model) else contextlib.nullcontext()


def training_precision(model):
    """A fresh context for one training forward pass: bfloat16 autocast where the plan chose it (measured on the conv
    VAE, so for conv models), else nothing."""
    if plan().bf16 and model.spec.is_conv and next(model.parameters()).device.type == "cpu":
        TAKEN["bf16"] += 1
        return bf16.autocast()
    return contextlib.nullcontext()


def memory_format(model) -> torch.memory_format:
    """The memory format conv models run in under the plan (channels_last only on the CPU, where it was measured)."""
    return torch.channels_last if model.spec.is_conv and plan().channels_last else torch.contiguous_format


def adopt(model):
    """Put a model's weights in the plan's memory format (idempotent); returns the model."""
    fmt = memory_format(model)
    if model.__dict__.get("_aecore_format") is not fmt:
        model.to(memory_format=fmt)
        model.__dict__["_aecore_format"] = fmt
    return model
