"""Autoencoders built from a JSON-serialisable `ModelSpec`: linear, MLP, conv AE and the lecture's conv VAE.

Every model maps images (N, C, H, W) in [0, 1] to a code and back to *logits* of the same shape;
`decode` applies the sigmoid. Variational models encode to (mu, logvar) and sample with `reparameterize`.
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from .fastpath import fast_kernels
from .upsampling import UPSAMPLE_HELP, UPSAMPLE_MODES, upsample_block  # noqa: F401  (UPSAMPLE_*: part of this API)

FAMILIES = ("linear", "mlp", "conv_ae", "conv_vae", "lecture_vae")


# Bounds checked before anything is built: a spec can come from an uploaded file. They keep a model and one
# image's activations to tens of MB (a conv layer holds at most 64 x 128 x 128 floats per image).
MAX_CHANNELS, MAX_SIDE, MAX_LATENT = 4, 128, 4096
MAX_HIDDEN_LAYERS, MAX_WIDTH, MAX_PARAMETERS = 8, 8192, 25_000_000
MAX_WIDTH_CONV = 64  # the conv AE's widest layer has 16x as many channels


class SpecError(ValueError):
    """A model spec that cannot be built (bad family, size, or input shape)."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model; the single source of truth, stored in checkpoints as JSON."""

    family: str
    input_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 2
    variational: bool = False
    hidden: tuple[int, ...] = (512, 256)  # MLP widths, encoder side (decoder mirrors them)
    upsample: str = "transposed"  # conv decoders only
    width: int = 16  # conv AE only: channels of its first conv layer; the next are 2x, 4x, 8x and 16x as many

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        self.validate()

    def validate(self) -> None:
        if self.family not in FAMILIES:
            raise SpecError(f"unknown model family {self.family!r}; choose one of {', '.join(FAMILIES)}")
        if self.upsample not in UPSAMPLE_MODES:
            raise SpecError(f"unknown upsampling {self.upsample!r}; choose one of {', '.join(UPSAMPLE_MODES)}")
        if len(self.input_shape) != 3:
            raise SpecError(f"input shape must be (C, H, W), got {self.input_shape}")
        c, h, w = self.input_shape
        if not (1 <= c <= MAX_CHANNELS and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise SpecError(f"input shape must be (C, H, W) with 1-{MAX_CHANNELS} channels and sides of 1-{MAX_SIDE} "
                            f"pixels, got {self.input_shape}")
        if not 1 <= self.latent_dim <= MAX_LATENT:
            raise SpecError(f"latent size must be between 1 and {MAX_LATENT}, got {self.latent_dim}")
        if not 1 <= self.width <= MAX_WIDTH_CONV:
            raise SpecError(f"conv width must be between 1 and {MAX_WIDTH_CONV}, got {self.width}")
        if len(self.hidden) > MAX_HIDDEN_LAYERS or any(not 1 <= width <= MAX_WIDTH for width in self.hidden):
            raise SpecError(f"hidden layers must be at most {MAX_HIDDEN_LAYERS} widths of 1-{MAX_WIDTH}, "
                            f"got {list(self.hidden)}")
        if self.is_conv and (h % 4 or w % 4):
            raise SpecError(f"conv models need height and width divisible by 4, got {h}x{w}")
        size = self.parameter_count()
        if size > MAX_PARAMETERS:
            raise SpecError(f"the model would have {size:,} parameters; the limit is {MAX_PARAMETERS:,}")

    def parameter_count(self) -> int:
        """Counted on PyTorch's meta device: shapes only, no memory, so an oversized spec costs nothing."""
        with torch.device("meta"):
            return count_parameters(Autoencoder(self))

    @property
    def is_conv(self) -> bool:
        return self.family.startswith("conv") or self.family == "lecture_vae"

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        """From JSON (a checkpoint): the types must be exactly right, since __post_init__ would coerce them."""
        if not isinstance(d, dict):
            raise SpecError(f"a model spec must be a JSON object, got {type(d).__name__}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise SpecError(f"unknown spec fields: {', '.join(sorted(unknown))}")
        whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
        checks = {"family": lambda v: isinstance(v, str), "upsample": lambda v: isinstance(v, str),
                  "variational": lambda v: isinstance(v, bool), "latent_dim": whole, "width": whole,
                  "input_shape": lambda v: isinstance(v, (list, tuple)) and all(whole(s) for s in v),
                  "hidden": lambda v: isinstance(v, (list, tuple)) and len(v) <= MAX_HIDDEN_LAYERS
                  and all(whole(s) for s in v)}
        for name, ok in checks.items():
            if name in d and not ok(d[name]):
                raise SpecError(f"spec field {name!r} has the wrong type or length: {str(d[name])[:60]}")
        return cls(**d)


class ForwardOutput(NamedTuple):
    logits: torch.Tensor  # (N, C, H, W) reconstruction logits
    z: torch.Tensor  # (N, latent) code used for decoding (a sample for VAEs)
    mu: torch.Tensor | None = None  # (N, latent), VAEs only
    logvar: torch.Tensor | None = None


def _fast(method):
    """Run a model method under the CPU fast paths chosen for this machine (fastpath.py): training, evaluation and
    every page go through these three methods, so all of them get the same forms."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with fast_kernels(self):
            return method(self, *args, **kwargs)
    return run


class Autoencoder(nn.Module):
    """encoder body -> code head(s) -> decoder; deterministic AE or VAE depending on `spec.variational`."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.encoder, features = build_encoder(spec)
        if spec.variational:
            self.fc_mu = nn.Linear(features, spec.latent_dim)
            self.fc_logvar = nn.Linear(features, spec.latent_dim)
        else:
            self.fc_z = nn.Linear(features, spec.latent_dim)
        self.decoder = build_decoder(spec)

    @property
    def variational(self) -> bool:
        return self.spec.variational

    @_fast
    def encode_distribution(self, x):
        """(N, C, H, W) -> mu, logvar, each (N, latent). VAEs only."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    @_fast
    def encode(self, x):
        """Deterministic code (N, latent): z for an AE, the posterior mean for a VAE."""
        h = self.encoder(x)
        return self.fc_mu(h) if self.variational else self.fc_z(h)

    @staticmethod
    def reparameterize(mu, logvar, generator: torch.Generator | None = None):
        """z = mu + sigma * eps, eps ~ N(0, I): sampling that gradients can flow through."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    @_fast
    def decode_logits(self, z):
        return self.decoder(z)

    def decode(self, z):
        """(N, latent) -> images (N, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x, generator: torch.Generator | None = None) -> ForwardOutput:
        if not self.variational:
            z = self.encode(x)
            return ForwardOutput(self.decode_logits(z), z)
        mu, logvar = self.encode_distribution(x)
        z = self.reparameterize(mu, logvar, generator)
        return ForwardOutput(self.decode_logits(z), z, mu, logvar)

    def reconstruct(self, x):
        """Images in [0, 1] decoded from the deterministic code (no sampling)."""
        return self.decode(self.encode(x))


def build_model(spec: ModelSpec) -> Autoencoder:
    return Autoencoder(spec)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- encoders and decoders -------------------------------------------------------------------------------


def relu() -> nn.ReLU:
    """A ReLU that works in place: each one here follows a layer that makes a fresh tensor and keeps only its input
    for the backward pass, so overwriting that output is safe (tests/test_fastpath.py trains every decoder both
    ways) and saves a pass over memory, ~6 % of an inference decode of the conv VAE."""
    return nn.ReLU(inplace=True)


def build_encoder(spec: ModelSpec) -> tuple[nn.Module, int]:
    """Encoder body (images -> flat features) and its feature size; the code heads sit on top."""
    c, h, w = spec.input_shape
    if spec.family == "linear":
        return nn.Flatten(), c * h * w
    if spec.family == "mlp":
        layers, width = [nn.Flatten()], c * h * w
        for size in spec.hidden:
            layers += [nn.Linear(width, size), relu()]
            width = size
        return nn.Sequential(*layers), width
    if spec.family == "conv_ae":  # the lecture's conv/ReLU/BN/pool encoder (widths 16-256 at the default width)
        k = spec.width
        layers = []
        for cin, cout in [(c, k), (k, 2 * k), (2 * k, 4 * k)]:
            layers += [nn.Conv2d(cin, cout, 3, padding=1), relu(), nn.BatchNorm2d(cout)]
        layers += [nn.MaxPool2d(2), nn.Conv2d(4 * k, 8 * k, 3, padding=1), relu(), nn.BatchNorm2d(8 * k)]
        layers += [nn.MaxPool2d(2), nn.Conv2d(8 * k, 16 * k, 3, padding=1), relu(), nn.Flatten()]
        return nn.Sequential(*layers), 16 * k * (h // 4) * (w // 4)
    if spec.family == "lecture_vae":  # the first lecture's code as written: conv/ReLU/BN/pool twice, conv, 800 units
        layers = [nn.Conv2d(c, 8, 3, padding=1), relu(), nn.BatchNorm2d(8), nn.MaxPool2d(2),
                  nn.Conv2d(8, 16, 3, padding=1), relu(), nn.BatchNorm2d(16), nn.MaxPool2d(2),
                  nn.Conv2d(16, 32, 3, padding=1), relu(), nn.Flatten(),
                  nn.Linear(32 * (h // 4) * (w // 4), 800), relu()]
        return nn.Sequential(*layers), 800
    # conv_vae: the lecture's exact encoder, two stride-2 convs (28 -> 14 -> 7)
    layers = [nn.Conv2d(c, 32, 3, stride=2, padding=1), relu()]
    layers += [nn.Conv2d(32, 64, 3, stride=2, padding=1), relu(), nn.Flatten()]
    return nn.Sequential(*layers), 64 * (h // 4) * (w // 4)


def build_decoder(spec: ModelSpec) -> nn.Module:
    """Code (N, latent) -> logits (N, C, H, W)."""
    c, h, w = spec.input_shape
    z = spec.latent_dim
    if spec.family == "linear":
        return nn.Sequential(nn.Linear(z, c * h * w), nn.Unflatten(1, (c, h, w)))
    if spec.family == "mlp":
        layers, width = [], z
        for size in reversed(spec.hidden):
            layers += [nn.Linear(width, size), relu()]
            width = size
        return nn.Sequential(*layers, nn.Linear(width, c * h * w), nn.Unflatten(1, (c, h, w)))
    h4, w4, up = h // 4, w // 4, spec.upsample
    if spec.family == "conv_ae":  # mirror of the lecture's decoder: up (x2), two same-size convs, up (x2)
        k = spec.width
        return nn.Sequential(
            nn.Linear(z, 16 * k * h4 * w4), relu(), nn.Unflatten(1, (16 * k, h4, w4)),
            upsample_block(16 * k, 8 * k, up, (h4, w4), (2 * h4, 2 * w4)), relu(), nn.BatchNorm2d(8 * k),
            nn.ConvTranspose2d(8 * k, 4 * k, 3, padding=1), relu(), nn.BatchNorm2d(4 * k),
            nn.ConvTranspose2d(4 * k, k, 3, padding=1), relu(), nn.BatchNorm2d(k),
            upsample_block(k, c, up, (2 * h4, 2 * w4), (h, w)),
        )
    if spec.family == "lecture_vae":  # its mirror: 800 units, then two transposed convs (x2 each) back to H x W
        return nn.Sequential(
            nn.Linear(z, 800), relu(), nn.Linear(800, 32 * h4 * w4), relu(), nn.Unflatten(1, (32, h4, w4)),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1, output_padding=(h // 2 - 2 * h4, w // 2 - 2 * w4)),
            relu(), nn.BatchNorm2d(16),
            nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, output_padding=(h - 2 * (h // 2), w - 2 * (w // 2))),
            relu(), nn.BatchNorm2d(8), nn.Conv2d(8, c, 3, padding=1),
        )
    # conv_vae, the lecture's exact decoder: k -> 2k+1 -> 4k+3, then a 4x4 conv back to 4k
    s1, s2 = (2 * h4 + 1, 2 * w4 + 1), (4 * h4 + 3, 4 * w4 + 3)
    return nn.Sequential(
        nn.Linear(z, 64 * h4 * w4), relu(), nn.Unflatten(1, (64, h4, w4)),
        upsample_block(64, 64, up, (h4, w4), s1), relu(),
        upsample_block(64, 32, up, s1, s2), relu(),
        nn.Conv2d(32, c, 4),
    )
