"""The training loop as a stream of events, so a CLI progress bar or a web page can watch it.

`train()` is a generator: it yields a `StepEvent` after every optimiser step and an `EpochEvent` after each
epoch's test pass. It knows nothing about who listens. `TrainingJob` (jobs.py) runs it in a thread.
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import json
import math
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

import torch
from torch.overrides import TorchFunctionMode

from .losses import RECON_LOSSES, kl_divergence, reconstruction_loss, sparsity_penalty
from .models import Autoencoder, ModelSpec, build_model
from .noise import Noise, corrupt


class TrainingError(RuntimeError):
    """Training stopped for a reason the user can act on (NaN loss, bad settings)."""


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 100
    lr: float = 1e-3
    beta: float = 1.0  # weight of the KL term (VAEs); beta > 1 is a beta-VAE
    sparsity: float = 0.0  # weight of the L1 penalty on the code (sparse AE)
    noise: str = "none"  # input corruption for denoising, e.g. "gaussian:0.5"
    recon: str = "bce"  # reconstruction loss: bce | mse | l1
    seed: int = 0
    device: str = "auto"
    max_steps: int | None = None  # stop early after this many optimiser steps (tests, quick demos)
    eval_batch_size: int = 250  # conv models on CPU: larger batches spill the L3 cache and run slower

    def __post_init__(self):
        self.noise = str(Noise.parse(self.noise))  # normalise and validate
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}"),
            (0 < self.lr < 10, f"learning rate must be in (0, 10), got {self.lr}"),
            (self.beta >= 0, f"beta must be >= 0, got {self.beta}"),
            (self.sparsity >= 0, f"sparsity must be >= 0, got {self.sparsity}"),
            (self.recon in RECON_LOSSES, f"reconstruction loss must be one of {', '.join(RECON_LOSSES)}"),
            (self.max_steps is None or self.max_steps >= 1, "max steps must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def noise_spec(self) -> Noise:
        return Noise.parse(self.noise)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class StepEvent:
    step: int  # optimiser steps done, 1-based
    total_steps: int
    epoch: int  # 1-based epoch this step belongs to
    loss: float  # batch mean, nats per image
    parts: dict[str, float]  # recon / kl / sparsity batch means
    samples_per_s: float
    eta_s: float


@dataclass
class EpochEvent:
    epoch: int
    epochs: int
    step: int
    train: dict[str, float]  # means over the epoch's batches
    test: dict[str, float]  # means over the test split, same objective
    elapsed_s: float
    val: dict[str, float] = field(default_factory=dict)  # means over a validation split carved from train, if any


@dataclass
class History:
    """Everything a learning-curve plot needs; JSON-serialisable for checkpoints."""

    step: list[int] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    epoch_step: list[int] = field(default_factory=list)  # optimiser step at which each epoch ended
    train: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, event) -> None:
        if isinstance(event, StepEvent):
            self.step.append(event.step)
            self.step_loss.append(event.loss)
        else:
            self.epoch.append(event.epoch)
            self.epoch_step.append(event.step)
            self.seconds = event.elapsed_s
            for store, values in ((self.train, event.train), (self.test, event.test), (self.val, event.val)):
                for k, v in values.items():
                    store.setdefault(k, []).append(v)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**{k: copy.deepcopy(v) for k, v in d.items() if k in cls.__dataclass_fields__})


def pick_device(name: str = "auto") -> torch.device:
    """cuda > mps > cpu for 'auto'; an explicit device that is missing is an error, not a silent fallback."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps"):
        raise TrainingError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)


_build_lock = threading.Lock()  # fork_rng + manual_seed touch the global RNG: one build at a time


def build_seeded(spec: ModelSpec, seed: int) -> Autoencoder:
    """Same spec + seed -> same initial weights, without disturbing anyone else's random stream."""
    with _build_lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(spec)


def loss_parts(model: Autoencoder, target, cfg: TrainConfig, generator=None) -> dict[str, torch.Tensor]:
    """The objective per image (N,) with its parts; one code path for training and evaluation."""
    x_in = corrupt(target, cfg.noise_spec, generator)
    out = model(x_in, generator)
    parts = {"recon": reconstruction_loss(out.logits, target, cfg.recon)}
    loss = parts["recon"]
    if model.variational:
        parts["kl"] = kl_divergence(out.mu, out.logvar)
        loss = loss + cfg.beta * parts["kl"]
    if cfg.sparsity > 0:
        parts["sparsity"] = sparsity_penalty(out.z)
        loss = loss + cfg.sparsity * parts["sparsity"]
    return {"loss": loss, **parts}


# ---- CPU fast path for convolutions with few output channels ----------------------------------------------
# oneDNN vectorises a channels_last convolution over output channels in blocks of 16 (one AVX-512 register), so
# a conv with 1 output channel, like the conv VAE's last Conv(32 -> 1, k4), leaves 15 of 16 lanes idle: ~30 % of
# the conv VAE's training step for ~5 % of its FLOPs. The same sums, regrouped: output pixel (R*a + p, R*b + q)
# is output channel (p, q) of a stride-R conv with an (k + R - 1)^2 kernel made of the k^2 kernel shifted by
# (p, q), zeros elsewhere; PixelShuffle(R) puts the R*R channels back in place. 1 -> 16 channels for R = 4:
# 3x the multiply-adds, all lanes busy; measured 1.9x faster for that layer (forward + backward). Gradients
# flow to the original weight through the index gather, so the model and its parameters are untouched.

_PHASE_INDEX: dict[tuple[int, int, int, int], torch.Tensor] = {}


def _phase_index(oc: int, kh: int, kw: int, r: int) -> torch.Tensor:
    """(oc*r*r, kh+r-1, kw+r-1) positions into the flattened (oc*kh*kw) kernel plus one trailing zero."""
    key = (oc, kh, kw, r)
    if key not in _PHASE_INDEX:
        idx = torch.full((oc, r, r, kh + r - 1, kw + r - 1), oc * kh * kw, dtype=torch.long)
        for o in range(oc):
            taps = torch.arange(o * kh * kw, (o + 1) * kh * kw).view(kh, kw)
            for p in range(r):
                for q in range(r):
                    idx[o, p, q, p:p + kh, q:q + kw] = taps
        _PHASE_INDEX[key] = idx.flatten(0, 2)
    return _PHASE_INDEX[key]


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


def _phased_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d via a stride-R conv + PixelShuffle where that is faster (see above); None where it does not apply."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    if not (isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor) and input.dim() == 4
            and weight.dim() == 4 and input.device.type == "cpu" and input.dtype == weight.dtype == torch.float32
            and groups == 1 and weight.shape[0] < 16 and not isinstance(padding, str)
            and pair(stride) == (1, 1) and pair(dilation) == (1, 1)
            and input.is_contiguous(memory_format=torch.channels_last)):
        return None
    oc, ic, kh, kw = weight.shape
    ph, pw = pair(padding)
    h_out, w_out = input.shape[2] + 2 * ph - kh + 1, input.shape[3] + 2 * pw - kw + 1
    r = _phase_factor(oc, kh, kw, h_out, w_out) if h_out > 0 and w_out > 0 else 1
    if r == 1:
        return None
    flat = torch.cat([weight.transpose(0, 1).reshape(ic, -1), weight.new_zeros(ic, 1)], dim=1)
    phased = flat[:, _phase_index(oc, kh, kw, r)].transpose(0, 1).contiguous(memory_format=torch.channels_last)
    y = torch.conv2d(input, phased, None if bias is None else bias.repeat_interleave(r * r), r, (ph, pw))
    return torch.pixel_shuffle(y, r)


class _FewChannelConvs(TorchFunctionMode):
    """Within this block, conv2d calls with few output channels take the faster regrouped form."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.conv2d:
            out = _phased_conv2d(*args, **kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)


def fast_kernels(model: Autoencoder, device: torch.device):
    """A fresh context manager for one forward (+ backward) of model: CPU conv models get `_FewChannelConvs`."""
    if device.type == "cpu" and model.spec.is_conv:
        return _FewChannelConvs()
    return contextlib.nullcontext()


# ---- CPU fast path: keep freed activation memory for the next step ----------------------------------------
# glibc hands large blocks back to the OS as soon as they are freed (mmap'd blocks, heap trimming), so every
# step of a conv model touches tens of MB of fresh pages: ~12,000 page faults per conv VAE step (batch 100,
# channels_last), ~20 % of the step. Raising the two thresholds once keeps that memory in the process for reuse;
# blocks above 32 MB still go to mmap, and at most 256 MB of free heap is kept. Process-wide and glibc-only.

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from <malloc.h>
_malloc_tuned = False


def _keep_freed_memory() -> None:
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20)
    except (OSError, AttributeError):  # no mallopt here: nothing to tune
        pass


def prepare(model: Autoencoder, x: torch.Tensor, device: torch.device):
    """Conv models run channels_last: on CPU only NHWC convolutions reach the vector units' peak."""
    fmt = torch.channels_last if model.spec.is_conv else torch.contiguous_format
    return x.to(device).contiguous(memory_format=fmt)


@torch.inference_mode()
def evaluate(model: Autoencoder, x: torch.Tensor, cfg: TrainConfig, seed: int | None = None) -> dict[str, float]:
    """Mean objective and parts over x (N, C, H, W), nats per image; noise and sampling seeded for repeatability."""
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(cfg.seed + 1 if seed is None else seed)
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    for i in range(0, len(x), cfg.eval_batch_size):
        batch = prepare(model, x[i : i + cfg.eval_batch_size], device)
        with fast_kernels(model, device):
            parts = loss_parts(model, batch, cfg, g)
        for k, v in parts.items():
            totals[k] = totals.get(k, 0.0) + v.sum().item()
    model.train(was_training)
    return {k: v / len(x) for k, v in totals.items()}


def make_optimizer(model, lr: float, device: torch.device):
    # fused Adam: one kernel for all parameters, 12-18 % faster on small MLPs on CPU
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def train(model: Autoencoder, train_x, test_x, cfg: TrainConfig, stop: threading.Event | None = None,
          val_x=None) -> Iterator[StepEvent | EpochEvent]:
    """Train in place, yielding events. train_x/test_x/val_x: (N, C, H, W) float in [0, 1]."""
    device = pick_device(cfg.device)
    if device.type == "cpu":
        _keep_freed_memory()
    fmt = torch.channels_last if model.spec.is_conv else torch.contiguous_format
    model.to(device=device, memory_format=fmt).train()
    data = train_x.to(device)  # the whole split stays one tensor: batches are index gathers, no per-item Python
    n = len(data)
    if n == 0:
        raise TrainingError("the training split is empty")
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = min(cfg.epochs * steps_per_epoch, cfg.max_steps or math.inf)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    opt = make_optimizer(model, cfg.lr, device)
    good_state = copy.deepcopy(model.state_dict())
    step, start = 0, time.perf_counter()
    rate = RateMeter()
    for epoch in range(1, cfg.epochs + 1):
        sums: dict[str, float] = {}
        seen = 0
        order = torch.randperm(n, generator=g, device=device)
        for i in range(0, n, cfg.batch_size):
            if (stop is not None and stop.is_set()) or step >= total:
                return
            t0 = time.perf_counter()
            batch = data[order[i : i + cfg.batch_size]].contiguous(memory_format=fmt)
            with fast_kernels(model, device):
                parts = loss_parts(model, batch, cfg, g)
            loss = parts["loss"].mean()
            value = loss.item()
            if not math.isfinite(value):
                _recover(model, good_state, step, epoch, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            means = {k: v.mean().item() for k, v in parts.items() if k != "loss"}
            for k, v in {"loss": value, **means}.items():
                sums[k] = sums.get(k, 0.0) + v * len(batch)
            seen += len(batch)
            rate.add(len(batch), time.perf_counter() - t0)
            elapsed = time.perf_counter() - start
            yield StepEvent(step, total, epoch, value, means, rate.samples_per_s, elapsed / step * (total - step))
        test = evaluate(model, test_x, cfg) if len(test_x) else {}
        if test and not math.isfinite(test["loss"]):
            _recover(model, good_state, step, epoch, cfg)
        good_state = copy.deepcopy(model.state_dict())
        train_means = {k: v / max(seen, 1) for k, v in sums.items()}
        val = evaluate(model, val_x, cfg) if val_x is not None and len(val_x) else {}
        yield EpochEvent(epoch, cfg.epochs, step, train_means, test, time.perf_counter() - start, val)


def _recover(model, good_state, step, epoch, cfg) -> None:
    """Put back the last weights that gave a finite loss, then stop with advice."""
    model.load_state_dict(good_state)
    raise TrainingError(
        f"the loss became NaN or infinite at step {step + 1} (epoch {epoch}); training stopped and the model "
        f"keeps its last good weights (end of epoch {epoch - 1}). Try a lower learning rate than {cfg.lr:g}."
    )


class BestWeights:
    """Keeps a copy of the weights from the epoch with the lowest validation loss (model selection that never
    looks at the test split)."""

    def __init__(self, model: Autoencoder):
        self.model, self.epoch, self.loss, self._state = model, 0, math.inf, None

    def update(self, event) -> None:
        loss = event.val.get("loss", math.inf) if isinstance(event, EpochEvent) else math.inf
        if loss < self.loss:
            self.epoch, self.loss = event.epoch, loss
            self._state = copy.deepcopy(self.model.state_dict())

    def restore(self) -> int:
        """Load the best weights into the model; returns their epoch (0 if there was no validation loss)."""
        if self._state is not None:
            self.model.load_state_dict(self._state)
        return self.epoch


class RateMeter:
    """Samples per second over recent steps (exponential moving average of step times)."""

    def __init__(self, smoothing: float = 0.9):
        self.smoothing, self.seconds_per_sample = smoothing, None

    def add(self, samples: int, seconds: float) -> None:
        s = seconds / max(samples, 1)
        prev = self.seconds_per_sample
        self.seconds_per_sample = s if prev is None else self.smoothing * prev + (1 - self.smoothing) * s

    @property
    def samples_per_s(self) -> float:
        return 1.0 / self.seconds_per_sample if self.seconds_per_sample else 0.0


def config_json(cfg: TrainConfig) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)
