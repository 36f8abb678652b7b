"""Input corruptions for denoising autoencoders: the input is corrupted, the target stays clean."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

NOISE_KINDS = ("none", "gaussian", "salt_pepper", "masking")
NOISE_HELP = {
    "none": "no corruption",
    "gaussian": "add N(0, sigma^2) noise, clip to [0, 1]; level = sigma",
    "salt_pepper": "set a fraction p of pixels to 0 or 1; level = p",
    "masking": "set a fraction p of pixels to 0; level = p",
}
MAX_LEVEL = {"gaussian": 2.0}  # sigma 2 on [0, 1] pixels is already pure noise; fractions stop at 1


@dataclass(frozen=True)
class Noise:
    kind: str = "none"
    level: float = 0.0

    def __post_init__(self):
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise {self.kind!r}; choose one of {', '.join(NOISE_KINDS)}")
        limit = MAX_LEVEL.get(self.kind, 1.0)
        if isinstance(self.level, bool) or not isinstance(self.level, (int, float)) \
                or not (math.isfinite(self.level) and 0 <= self.level <= limit):
            raise ValueError(f"noise level for {self.kind} must be a number in [0, {limit:g}], got {self.level!r}")

    @property
    def active(self) -> bool:
        return self.kind != "none" and self.level > 0

    def __str__(self) -> str:
        return "none" if not self.active else f"{self.kind}:{self.level:g}"

    @classmethod
    def parse(cls, text: str | None) -> "Noise":
        """'gaussian:0.5', 'salt_pepper:0.1', 'masking:0.3', 'none' (a bare kind gets a typical level)."""
        if text is not None and not isinstance(text, str):
            raise ValueError(f"noise must be text like 'gaussian:0.5', got {text!r}")
        if not text or text == "none":
            return cls()
        kind, _, level = text.partition(":")
        kind = kind.strip().replace("-", "_")
        try:
            value = float(level) if level else {"gaussian": 0.5}.get(kind, 0.2)
        except ValueError:
            raise ValueError(f"noise level must be a number, got {level!r} (e.g. gaussian:0.5)") from None
        return cls(kind, value)


def corrupt(x: torch.Tensor, noise: Noise, generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupted copy of x (N, C, H, W) in [0, 1]; x itself is never modified."""
    if not noise.active:
        return x
    rand = lambda: torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)  # noqa: E731
    if noise.kind == "gaussian":
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + noise.level * eps).clamp_(0, 1)
    hit = rand() < noise.level
    if noise.kind == "masking":
        return x.masked_fill(hit, 0.0)
    salt = rand() < 0.5
    return torch.where(hit, salt.to(x.dtype), x)
