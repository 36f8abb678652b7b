"""Training on several processes with PyTorch DistributedDataParallel, when started by torchrun.

    torchrun --nproc_per_node N -m aecore train --model conv_vae --epochs 20 --out x.pt

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR for each process; `init()` joins the group (NCCL on GPUs,
one GPU per process; gloo on CPUs, the CPU budget split between the local processes). Every process draws the same
shuffled order (same seed) and takes its share of each batch (`rank::world_size`); DDP averages the gradients, so
an optimiser step sees the same mean gradient as one process with the whole batch (up to float rounding; VAE
sampling noise is drawn per share). Evaluation runs on every process (it is cheap and keeps them in step); only
rank 0 writes the checkpoint and prints. Without torchrun nothing here does anything.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from . import runtime


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init(device: str = "auto") -> bool:
    """Join the process group if torchrun started this process with WORLD_SIZE > 1; returns whether it did."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return dist.is_available() and dist.is_initialized()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    gpu = device in ("auto", "cuda") and torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    else:  # the local processes share this machine's CPUs
        runtime.use_threads(runtime.threads_for(local_size))
    dist.init_process_group(backend="nccl" if gpu else "gloo")
    return True


def wrap(model):
    """The model under DDP when a process group is up (gradients averaged across processes), else itself."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This process's share of a batch's indices."""
    size = world_size()
    return indices if size == 1 else indices[rank()::size]


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
