"""torchrun + DistributedDataParallel (gloo on CPU): two processes train the model one process would train."""
import os
import socket
import subprocess
import sys

import pytest

from aecore.checkpoints import load_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["train", "--epochs", "2", "--max-train", "400", "--batch-size", "50", "--iw-samples", "0", "--quiet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command, tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "AECORE_FASTPATHS": "none"}  # the same kernels in every process
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def train_pair(model, tmp_path, seed=0):
    one, two = tmp_path / f"one{seed}.pt", tmp_path / f"two{seed}.pt"
    args = [*ARGS, "--model", model, "--seed", str(seed)]
    run([sys.executable, "-m", "aecore", *args, "--out", str(one)], tmp_path)
    out = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), "-m", "aecore", *args, "--out", str(two)], tmp_path)
    assert out.stdout.count("wrote ") == 1, "only rank 0 writes and prints"
    a, b = load_checkpoint(one), load_checkpoint(two)
    assert b.extra["processes"] == 2 and "processes" not in a.extra
    assert len(a.history.step_loss) == len(b.history.step_loss) == 16  # 2 epochs x 8 batches of 50
    return a, b


def test_two_gloo_processes_train_exactly_what_one_process_trains(tmp_path):
    """linear AE (MSE, no sampling): every step sees the same mean gradient, so the same model up to rounding."""
    a, b = train_pair("linear_ae", tmp_path)
    # each process trained on its half of every batch (rank 0's first loss is over other images) ...
    # (whole-batch losses would agree to rounding, ~1e-6; half-batch means differ by ~1e-3)
    assert max(abs(x - y) / x for x, y in zip(a.history.step_loss, b.history.step_loss)) > 1e-4
    for x, y in zip(a.history.test["loss"], b.history.test["loss"]):
        assert y == pytest.approx(x, rel=1e-4)
    assert b.metrics["objective_loss"] == pytest.approx(a.metrics["objective_loss"], rel=1e-4)


def test_two_gloo_processes_train_a_vae_as_well_as_one_within_sampling_noise(tmp_path):
    """MLP VAE: each process draws its own sampling noise, so the curves differ by noise; the bar is the
    difference that another seed makes to a single-process run, measured here."""
    a, b = train_pair("mlp_vae", tmp_path)
    other_seed = tmp_path / "seed1.pt"
    run([sys.executable, "-m", "aecore", *ARGS, "--model", "mlp_vae", "--seed", "1", "--out", str(other_seed)],
        tmp_path)
    noise = abs(load_checkpoint(other_seed).history.test["loss"][-1] - a.history.test["loss"][-1])
    assert abs(b.history.test["loss"][-1] - a.history.test["loss"][-1]) <= 2 * noise + 1.0
