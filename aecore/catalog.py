"""The named models a user picks from: an architecture plus the training objective that makes it what it is.

A denoising AE is a conv AE trained on corrupted inputs; a sparse AE is an MLP AE with an L1 penalty on the
code; a beta-VAE is a conv VAE with beta > 1. So a preset fixes a `ModelSpec` family and `TrainConfig` defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .models import ModelSpec
from .train import TrainConfig


@dataclass(frozen=True)
class ModelPreset:
    name: str
    title: str
    description: str
    family: str
    latent_dim: int
    variational: bool = False
    width: int | None = None  # conv AE channel width (ModelSpec.width) where it differs from the default
    hidden: tuple[int, ...] | None = None  # MLP widths (ModelSpec.hidden) where they differ from the default
    train: dict = field(default_factory=dict)  # TrainConfig defaults that define the variant

    def spec(self, input_shape, latent_dim: int | None = None, upsample: str = "transposed") -> ModelSpec:
        return ModelSpec(self.family, tuple(input_shape),
                         self.latent_dim if latent_dim is None else latent_dim, self.variational,
                         upsample=upsample, **({"width": self.width} if self.width else {}),
                         **({"hidden": self.hidden} if self.hidden else {}))

    def config(self, **overrides) -> TrainConfig:
        """The preset's defaults, overridden by any non-None keyword (e.g. from the CLI or the page)."""
        values = {**self.train, **{k: v for k, v in overrides.items() if v is not None}}
        return TrainConfig(**values)


MODELS: dict[str, ModelPreset] = {p.name: p for p in [
    ModelPreset("linear_ae", "Linear AE", "Linear(784, 50) -> Linear(50, 784): the smallest autoencoder, "
                "close to PCA.", "linear", 50, train=dict(recon="mse")),
    ModelPreset("mlp_ae", "MLP AE", "784-512-256-z with ReLU, mirrored decoder.", "mlp", 16,
                train=dict(recon="mse")),
    ModelPreset("conv_ae", "Conv AE", "The lecture's conv/BN/pool encoder and transposed-conv decoder, "
                "with a real latent bottleneck.", "conv_ae", 32, train=dict(recon="mse")),
    ModelPreset("conv_ae_narrow", "Narrow conv AE", "The conv AE with half the channels (8-128 instead of 16-256) "
                "and an 8-number code: a fifth of the weights, trains in seconds; the Checkerboard Lab compares "
                "its upsampling layers.", "conv_ae", 8, width=8, train=dict(recon="mse")),
    ModelPreset("denoising_ae", "Denoising AE", "Conv AE trained to restore clean images from noisy inputs.",
                "conv_ae", 32, train=dict(recon="mse", noise="gaussian:0.5")),
    ModelPreset("sparse_ae", "Sparse AE", "MLP AE with a wide code and an L1 penalty that keeps most units off.",
                "mlp", 64, train=dict(recon="mse", sparsity=0.05)),
    ModelPreset("mlp_vae", "MLP VAE", "784-512-256-z VAE with a Bernoulli decoder; loss = -ELBO.",
                "mlp", 2, True, train=dict(recon="bce")),
    ModelPreset("talk_vae", "The talk's MLP VAE", "784-500-z with ReLU and a 20-number code, as in the talk; a "
                "Bernoulli decoder, loss = -ELBO.", "mlp", 20, True, hidden=(500,), train=dict(recon="bce")),
    ModelPreset("conv_vae", "Conv VAE", "The lecture's conv VAE exactly (96,677 parameters at z = 2).",
                "conv_vae", 2, True, train=dict(recon="bce")),
    ModelPreset("lecture_vae", "Lecture's conv VAE (as written)", "The first lecture's code: Conv(1,8)-ReLU-BN-pool, "
                "Conv(8,16)-ReLU-BN-pool, Conv(16,32)-ReLU, Linear(1568, 800), z heads; a transposed-conv decoder. "
                "Its loss can be trained as written in the lecture (see the Train page's toggle).",
                "lecture_vae", 2, True, train=dict(recon="bce")),
    ModelPreset("beta_vae", "beta-VAE", "Conv VAE with the KL term weighted by beta = 4: smoother, more "
                "disentangled codes, blurrier reconstructions.", "conv_vae", 10, True,
                train=dict(recon="bce", beta=4.0)),
]}


def get_preset(name: str) -> ModelPreset:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
