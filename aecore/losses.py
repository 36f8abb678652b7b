"""Losses, per image in nats (sums over pixels), so VAE numbers are -ELBO as reported in the literature.

Every function returns one value per image, shape (N,); the training loop averages over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .fastpath import TAKEN, plan

RECON_LOSSES = ("bce", "mse", "l1")


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Summed over pixels, (N,). bce: Bernoulli NLL in nats; mse/l1: on sigmoid(logits) in [0, 1]."""
    if target.is_inference() and torch.is_grad_enabled():  # e.g. a split cached by a page under inference_mode:
        target = target.clone()  # autograd may not save it for backward, so train on a normal copy
    cpu = logits.device.type == "cpu"
    if kind == "bce":  # from logits: stable where sigmoid saturates
        per_pixel = (bernoulli_nll_fast(logits, target) if cpu and plan().bce
                     else F.binary_cross_entropy_with_logits(logits, target, reduction="none"))
    elif kind == "mse":
        if cpu and plan().mse:
            return squared_error_fast(logits, target)
        per_pixel = (torch.sigmoid(logits) - target).square()
    elif kind == "l1":
        per_pixel = (torch.sigmoid(logits) - target).abs()
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r}; choose one of {', '.join(RECON_LOSSES)}")
    return per_pixel.flatten(1).sum(1)


class _BernoulliNLL(torch.autograd.Function):
    """Elementwise BCE from logits, softplus(x) - x * t, written as max(x, 0) - x * t + log(1 + exp(-|x|)).

    Why: on CPU, PyTorch's log_sigmoid/log1p (inside binary_cross_entropy_with_logits) is not vectorised in this
    build, ~15x slower than log; this form is 2x faster forward + backward at batch 100 on MNIST and ~8 % faster
    MLP VAE training. Same values to ~1e-7 nats per pixel (log(1 + e) rounds e < 6e-8 away), same gradient.
    """

    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits)
        ctx.target = target  # not saved for backward: the data may be an inference-mode tensor (cached split)
        return logits.clamp_min(0) - logits * target + torch.exp(-logits.abs()).add_(1).log_()

    @staticmethod
    def backward(ctx, grad):
        (logits,), target = ctx.saved_tensors, ctx.target
        grad_logits = grad * (torch.sigmoid(logits) - target) if ctx.needs_input_grad[0] else None
        grad_target = -grad * logits if ctx.needs_input_grad[1] else None
        return grad_logits, grad_target


def bernoulli_nll_fast(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise Bernoulli NLL from logits by `_BernoulliNLL` (fastpath.py decides where it is used)."""
    TAKEN["bce"] += 1
    return _BernoulliNLL.apply(logits, target)


class _SigmoidSquaredError(torch.autograd.Function):
    """sum over pixels of (sigmoid(logits) - target)^2, per image, with its backward written out.

    Why: autograd's chain (sigmoid, sub, pow, sum and their backwards) makes about ten passes over the images and
    holds one more of them; the linear AE's loss is a sixth of its step. This makes six passes: 1.1x for the loss
    alone at batch 100 on MNIST. Same values (the square is d * d either way), the same gradient to rounding.
    """

    @staticmethod
    def forward(ctx, logits, target):
        s = torch.sigmoid(logits)
        d = s - target
        ctx.save_for_backward(s, d)
        return (d * d).sum(dim=tuple(range(1, d.dim())))  # over C, H, W in any memory format, no reshape copy

    @staticmethod
    def backward(ctx, grad):
        s, d = ctx.saved_tensors
        two_g_d = d * (2 * grad).view(-1, *[1] * (d.dim() - 1))
        grad_logits = torch.ops.aten.sigmoid_backward(two_g_d, s) if ctx.needs_input_grad[0] else None  # * s(1-s)
        return grad_logits, (-two_g_d if ctx.needs_input_grad[1] else None)


def squared_error_fast(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image squared error of sigmoid(logits) by `_SigmoidSquaredError` (fastpath.py decides where it is used)."""
    TAKEN["mse"] += 1
    return _SigmoidSquaredError.apply(logits, target)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) in closed form, summed over latent dims: (N,) nats."""
    return kl_per_dimension(mu, logvar).sum(1)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """-0.5 * (1 + logvar - mu^2 - exp(logvar)), elementwise: (N, latent) nats."""
    return -0.5 * (1 + logvar - mu.square() - logvar.exp())


def sparsity_penalty(z: torch.Tensor) -> torch.Tensor:
    """L1 norm of the code, (N,): pushes most code units to zero (sparse AE)."""
    return z.abs().flatten(1).sum(1)


REDUCTIONS = ("per_image", "as_written")


def objective(out, target: torch.Tensor, recon: str = "bce", beta: float = 1.0, sparsity: float = 0.0,
              reduction: str = "per_image"):
    """The one training objective, per image (N,) with its parts: reconstruction + beta * KL (VAEs) + sparsity * L1
    of the code. `out` is a model's ForwardOutput. With recon="bce", beta=1 and no sparsity it is -ELBO in nats.
    Training, evaluation, every page and the benchmarks all compute the loss here.

    reduction="as_written": the first lecture's code, `nn.BCELoss()` (a mean over pixels and batch) plus a KL summed
    over the batch. Per image that is recon / pixels + batch * KL, whose batch mean is the lecture's number: the KL
    weighs pixels x batch (78,400 at batch 100) times more than in -ELBO. The parts stay in nats either way."""
    parts = {"recon": reconstruction_loss(out.logits, target, recon)}
    if reduction == "as_written":
        recon_weight, kl_weight = 1.0 / target[0].numel(), beta * target.shape[0]
    elif reduction == "per_image":
        recon_weight, kl_weight = 1.0, beta
    else:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    loss = parts["recon"] if recon_weight == 1.0 else recon_weight * parts["recon"]  # no op when unweighted
    if out.mu is not None:
        parts["kl"] = kl_divergence(out.mu, out.logvar)
        loss = loss + kl_weight * parts["kl"]
    if sparsity > 0:
        parts["sparsity"] = sparsity_penalty(out.z)
        loss = loss + sparsity * parts["sparsity"]
    return {"loss": loss, **parts}


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor | float = 0.0, logvar: torch.Tensor | float = 0.0):
    """log N(x; mu, exp(logvar)) summed over the last dim: (..., D) -> (...) nats."""
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    return (-0.5 * (torch.log(torch.tensor(2 * torch.pi)) + logvar + (x - mu).square() / logvar.exp())).sum(-1)
