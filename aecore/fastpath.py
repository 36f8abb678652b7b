"""Which CPU fast path runs on this machine, decided once per process by measurement, and the dispatch to them.

The fast paths (fastlinear.py, fastconv.py, the BCE form in losses.py, channels_last for conv models) were tuned
on an AVX-512 AMD EPYC; on another CPU one can lose (issue #10: the conv VAE fell from 1.49x to 1.32x on AVX2).
So each is used only where it wins *here*:

1. a guard (fastprobe.py): the torch version range the private/low-level operator was tested with, the CPU
   capability PyTorch reports, and a numerical self-check against the plain layer (values and gradients). A failed
   guard turns the path off; nothing else can turn it on.
2. a short measurement (fastprobe.py, ~1 s in all): the fast and the plain form of each, interleaved, on the shapes
   the shipped models use; a path stays on only if it is at least `MIN_GAIN` faster. Each path is measured when
   first asked for (`MeasuredPlan`), so `python -m aecore eval` measures only the inference paths.

`plan()` returns the decision; `use_plan()` installs one (a training worker gets its
parent's, so it does not measure again); `AECORE_FASTPATHS=none|all|name,name` overrides the measurement
(benchmarks, tests). `TAKEN` counts the calls each path actually served, so tests can assert what ran.
Models enter `fast_kernels(model)` in their own encode/decode methods (models.py): training, evaluation and every
page use the same forms.
"""
from __future__ import annotations

import collections
import contextlib
import os
import threading
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import bf16, fastconv, fastlinear, fastresize
from .fastprobe import GUARDS, _safe_gain

MIN_GAIN = 1.08  # a fast path must beat the plain form by 8 % in the measurement to be used
TAKEN: collections.Counter = collections.Counter()  # calls served by each fast path (name -> count)


@dataclass(frozen=True)
class Plan:
    linear: bool = False  # large nn.Linear through oneDNN's inner product (fastlinear.py)
    conv: bool = False  # few-output-channel conv2d as one GEMM over kernel taps (fastconv.py, fast path 1)
    conv_transpose: bool = False  # NHWC transposed convs: odd sizes via even, bias grad apart (fastconv.py, 2)
    bce: bool = False  # the vectorised Bernoulli NLL (losses.py)
    mse: bool = False  # the squared error of sigmoid(logits) with its backward written out (losses.py)
    channels_last: bool = False  # conv models in NHWC memory format (training)
    infer_channels_last: bool = False  # conv layers' inputs in NHWC for passes without gradients (eval, pages)
    resize_conv: bool = False  # resize + 3x3 conv computed at the input's resolution (fastresize.py, 3)
    bf16: bool = False  # training forward passes in bfloat16 autocast, on CPUs with bfloat16 units (bf16.py)
    reason: str = ""  # how it was decided, for benchmarks and bug reports

    def to_dict(self) -> dict:
        return asdict(self)

    def settle(self) -> "Plan":
        return self  # decided already

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        return cls(**{k: d[k] for k in (f.name for f in fields(cls)) if k in d})


PATHS = tuple(f.name for f in fields(Plan) if f.name != "reason")
_plan: Plan | None = None
_plan_lock = threading.Lock()


def plan() -> "Plan | MeasuredPlan":
    """This process's plan: installed, forced by AECORE_FASTPATHS, or measured path by path on first use."""
    global _plan
    if _plan is None:
        with _plan_lock:
            if _plan is None:
                _plan = _choose(os.environ.get("AECORE_FASTPATHS", "auto").strip().lower())
    return _plan


def use_plan(p: Plan | dict | None) -> Plan:
    """Install a plan (None: forget it, so the next `plan()` decides again)."""
    global _plan
    _plan = Plan.from_dict(p) if isinstance(p, dict) else p
    return _plan


@contextlib.contextmanager
def plain_pytorch():
    """Every layer in its plain PyTorch form within this block: the benchmarks' tutorial reference (its model is an
    aecore model, whose methods would otherwise take this machine's fast paths too). Not for concurrent use."""
    before = plan()
    use_plan(Plan(reason="plain PyTorch"))
    try:
        yield
    finally:
        use_plan(before)


def _choose(mode: str) -> "Plan | MeasuredPlan":
    if mode == "auto":
        return MeasuredPlan()
    if mode == "none":
        return Plan(reason="AECORE_FASTPATHS=none")
    guards = {name: guard() for name, guard in GUARDS.items()}
    off = "; ".join(f"{n}: {p}" for n, p in guards.items() if p)
    wanted = set(PATHS) if mode == "all" else {w.strip() for w in mode.split(",")}
    return Plan(**{n: n in wanted and not guards[n] for n in PATHS}, reason=f"AECORE_FASTPATHS={mode}" +
                (f" (guarded off: {off})" if off else ""))


class MeasuredPlan:
    """The plan by measurement, each path measured on its first use: a process that only evaluates or draws never
    pays for training's measurements (0.30-0.36 s of 1.4-1.9 s per process on a 2-core Xeon VM, 2026-12-03).
    Guards run at once (cheap). A decided path becomes a plain attribute, so the dispatch's per-op lookups stay
    fast. `settle()` decides every path (the app's warm-up; `to_dict()` for a training worker)."""

    def __init__(self):
        with torch.inference_mode(False), torch.enable_grad():  # the self-checks compare gradients too
            self.guards = {name: guard() for name, guard in GUARDS.items()}
        self.gains: dict[str, float] = {}
        self._lock = threading.RLock()  # one measurement at a time: the app's pages and warm-up share the process
        self._measuring = False

    def __getattr__(self, name: str) -> bool:  # called only for a path not decided yet
        if name not in PATHS:
            raise AttributeError(name)
        # bf16 first: if training will run in bfloat16, the memory format is measured in bfloat16 too (NHWC gained
        # 1.27x on the conv VAE's bf16 step where the float32 measurement said 0.97x)
        low = name == "channels_last" and self.bf16
        with self._lock:
            if name in self.__dict__:
                return self.__dict__[name]
            if self._measuring:  # asked by an op inside a measurement: that op runs in its plain form
                return False
            self._measuring = True
            try:
                with torch.inference_mode(False), torch.enable_grad():
                    gain = _safe_gain(name, low) if not self.guards[name] else 0.0
            finally:
                self._measuring = False
            self.gains[name] = gain
            self.__dict__[name] = on = gain >= (bf16.MIN_GAIN if name == "bf16" else MIN_GAIN)
            return on

    def settle(self) -> "MeasuredPlan":
        for name in PATHS:
            getattr(self, name)
        return self

    @property
    def reason(self) -> str:
        measured = ", ".join(f"{n} {g:.2f}x" for n, g in self.gains.items() if not self.guards[n])
        waiting = [n for n in PATHS if n not in self.__dict__]
        off = "; ".join(f"{n}: {p}" for n, p in self.guards.items() if p)
        return (f"measured on {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads: "
                f"{measured or 'nothing yet'}" + (f"; not used yet: {', '.join(waiting)}" if waiting else "")
                + (f"; guarded off: {off}" if off else ""))

    def to_dict(self) -> dict:
        self.settle()
        return {**{n: self.__dict__[n] for n in PATHS}, "reason": self.reason}


# ---- dispatch --------------------------------------------------------------------------------------------------


def _counted(name, fn, applies=None):
    """fn where the plan has it on; `applies` first, where given, so a call that could never take the path (the
    conv VAE's small linear layers) does not make a measuring plan measure it."""
    def run(*args, **kwargs):
        if (applies is not None and not applies(*args, **kwargs)) or not getattr(plan(), name):
            return None
        out = fn(*args, **kwargs)
        if out is not None:
            TAKEN[name] += 1
        return out
    return run


_FAST = {F.linear: _counted("linear", fastlinear.onednn_linear, fastlinear.applies),
         torch.conv2d: _counted("conv", fastconv.taps_conv2d),
         torch.conv_transpose2d: _counted("conv_transpose", fastconv.fast_conv_transpose2d)}


# the ops whose input goes to NHWC: the convs, and resizing (the resize-conv decoders' Upsample ran 6x slower on
# NCHW input: 1.5 against 0.25 ms for 100 codes of the z = 2 bilinear VAE, 2-core Xeon, 2026-12-03)
_NHWC_OPS = (torch.conv2d, torch.conv_transpose2d, F.interpolate)


def _nhwc_input(args: tuple) -> tuple:
    """A conv's or resize's arguments with its input in NHWC, so the NHWC kernels run (2-4x for the transposed
    convs of the conv VAE's decoder, 6x for a resize; forward only; counted as a fast path taken)."""
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 4 and x.device.type == "cpu":
        TAKEN["infer_channels_last"] += 1  # a no-op after the first conv, whose output is NHWC already
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return args


class _NhwcInputs(TorchFunctionMode):
    """Only the NHWC inputs, for measuring that path alone."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*(_nhwc_input(args) if func in _NHWC_OPS else args), **(kwargs or {}))


class _CpuFastPaths(TorchFunctionMode):
    """Within this block, linear / conv2d / conv_transpose2d calls that fit take the faster forms."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _NHWC_OPS and args and not torch.is_grad_enabled() and plan().infer_channels_last:
            args = _nhwc_input(args)
        fast = _FAST.get(func)
        if fast is not None:
            out = fast(*args, **kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)


def resize_conv(x, resize, conv):
    """resize then conv in the low-resolution form (fastresize.py) where it applies and the plan has it, else None:
    the caller runs the two layers. The output has the memory format the conv's would have: NHWC where the input or
    the weights are NHWC (PyTorch's rule) and in passes without gradients under `infer_channels_last`, else NCHW."""
    if (resize.scale_factor is not None or resize.align_corners or not fastresize.applies(x, resize.mode, conv)
            or not plan().resize_conv):
        return None
    TAKEN["resize_conv"] += 1
    y = fastresize.resize_conv2d(x, conv.weight, conv.bias, _pair(resize.size), resize.mode)
    nhwc = _is_nhwc(x) or _is_nhwc(conv.weight) or (not torch.is_grad_enabled() and plan().infer_channels_last)
    return y if nhwc else y.contiguous()


def _is_nhwc(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _can_gain(model) -> bool:
    """Whether some layer of model can take a fast path under the plan (remembered per model and plan: it is asked
    on every call)."""
    p = plan()
    cached = model.__dict__.get("_aecore_fast")
    if cached is None or cached[0] is not p:
        conv_gain = model.spec.is_conv and (p.conv or p.conv_transpose or p.infer_channels_last)
        gain = conv_gain or (fastlinear.has_large_linear(model) and p.linear)
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
