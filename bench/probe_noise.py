"""How far the shipped models' probe accuracy moves when their codes move by float noise (tests/test_shipped.py
takes its probe tolerance from this).

AVX2 and AVX-512 kernels sum floats in different orders, so a model's codes differ between CPUs by ~1e-7
relative (measured: every shipped metric but the probe agreed to 2.4e-7 relative between this machine's AVX-512
kernels and its AVX2 ones, ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2). The probe is an argmax, so a test
image near a decision boundary flips: conv_vae_z2_subpixel went 0.525 -> 0.527. This script perturbs the codes by
a relative 1e-6 and 1e-5 (5-50x the measured difference), 20 draws each, and reports the largest change.

    python bench/probe_noise.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import aecore  # noqa: E402,F401  (thread policy before torch work)
from aecore.checkpoints import list_checkpoints, load_checkpoint  # noqa: E402
from aecore.data import load_dataset  # noqa: E402
from aecore.metrics import encode_all, probe_accuracy  # noqa: E402


def main() -> None:
    out = {}
    for path in list_checkpoints(Path(__file__).resolve().parent.parent / "checkpoints"):
        ckpt = load_checkpoint(path)
        data = load_dataset(ckpt.dataset)
        tr, te = encode_all(ckpt.model, data.train_x), encode_all(ckpt.model, data.test_x)
        base = probe_accuracy(tr, data.train_y, te, data.test_y)
        g = torch.Generator().manual_seed(0)
        row = {"probe": base, "test_images": len(te)}
        for rel in (1e-6, 1e-5):
            shifts = []
            for _ in range(20):
                jitter = lambda c: c * (1 + rel * torch.randn(c.shape, generator=g))  # noqa: E731
                shifts.append(abs(probe_accuracy(jitter(tr), data.train_y, jitter(te), data.test_y) - base))
            row[f"max_change_rel{rel:g}"] = max(shifts)
        out[path.stem] = row
        print(f"{path.stem:26s} probe {base:.3f}  max change: 1e-6 -> {row['max_change_rel1e-06']:.3f}, "
              f"1e-5 -> {row['max_change_rel1e-05']:.3f}", flush=True)
    Path(__file__).resolve().parent.joinpath("results", "probe_noise.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
