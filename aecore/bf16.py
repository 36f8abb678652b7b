"""Training forward passes in bfloat16 on CPUs built for it (fast path 6 in fastpath.py's plan).

Intel's AMX and AVX-512 BF16 units multiply bfloat16 2-3x faster than float32 (the conv VAE's training step at
batch 32: 1.7x, at batch 100: 2.1x, on a Xeon with AMX). `torch.autocast` runs the convolutions and linear layers
in bfloat16 and keeps the weights, gradients, optimiser and the loss in float32: the model's outputs are cast back
before the objective, so the per-image sums over 784 pixels never accumulate in bfloat16. Evaluation, the pages
and every reported metric stay float32. On a CPU without those units bfloat16 is emulated and slower, so the guard
turns the path off there; elsewhere the plan's measurement decides.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

HARDWARE_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of the bfloat16 units
# oneDNN's instruction-set cap (ONEDNN_MAX_CPU_ISA, or its old name DNNL_MAX_CPU_ISA): below AVX512_CORE_BF16 its
# kernels use no bfloat16 units even where the CPU has them (the AVX2 emulation in bench/README.md sets AVX2)
ISA_CAP_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
BF16_ISAS = ("ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10")
MIN_GAIN = 1.25  # stricter than the other paths' 8 %: it trades precision, so only a clear win counts
TOLERANCE = 0.05  # the self-check: logits within 5 % of their range of the float32 forward


def cpu_flags() -> set[str]:
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return set()
    return set(line.split(":", 1)[1].split())


def isa_cap() -> str:
    """oneDNN's instruction-set cap from the environment, upper case; "" when none is set."""
    return next((os.environ[v].strip().upper() for v in ISA_CAP_VARS if os.environ.get(v, "").strip()), "")


def isa_allows_bf16(cap: str) -> bool:
    """Whether oneDNN capped at `cap` (isa_cap(); "" for no cap) may use bfloat16 units."""
    return not cap or cap.startswith(BF16_ISAS)


def guard() -> str | None:
    """None when bfloat16 training may run here, else why not."""
    if not any(flag in cpu_flags() for flag in HARDWARE_FLAGS):
        return "this CPU has no bfloat16 units (AMX or AVX-512 BF16)"
    if not isa_allows_bf16(cap := isa_cap()):
        return f"oneDNN is limited to {cap} (ONEDNN_MAX_CPU_ISA), which has no bfloat16 units"
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN"
    forward, x = _probe()
    with torch.no_grad():
        exact = forward(x)
        with autocast():
            fast = forward(x).float()
    spread = float(exact.max() - exact.min()) or 1.0
    return None if float((fast - exact).abs().max()) <= TOLERANCE * spread else "disagrees with float32"


def measure_gain() -> float:
    """float32 time / bfloat16 time of the conv VAE's training step (forward + backward), batch 32."""
    from .fastprobe import _time_pair

    forward, x = _probe()

    def step(low: bool):
        def run():
            with autocast() if low else contextlib.nullcontext():
                out = forward(x)
            out.float().sum().backward()
        return run
    return _time_pair(step(True), step(False), 3)


def autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _probe():
    """The conv VAE's layers called directly: its own methods would ask for the plan this is helping to make."""
    from .models import ModelSpec, build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))
        return (lambda inp: m.decoder(m.fc_mu(m.encoder(inp)))), torch.rand(32, 1, 28, 28)
