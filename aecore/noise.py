"""Input corruptions for denoising autoencoders: the input is corrupted, the target stays clean."""
from __future__ import annotations

from dataclasses import dataclass

import torch

NOISE_KINDS = ("none", "gaussian", "salt_pepper", "masking")
NOISE_HELP = {
    "none": "no corruption",
    "gaussian": "add N(0, sigma^2) noise, clip to [0, 1]; level = sigma",
    "salt_pepper": "set a fraction p of pixels to 0 or 1; level = p",
    "masking": "set a fraction p of pixels to 0; level = p",
}


@dataclass(frozen=True)
class Noise:
    kind: str = "none"
    level: float = 0.0

    def __post_init__(self):
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise {self.kind!r}; choose one of {', '.join(NOISE_KINDS)}")
        limit = None if self.kind == "gaussian" else 1.0
        if self.level < 0 or (limit is not None and self.level > limit) or self.level != self.level:
            raise ValueError(f"noise level for {self.kind} must be in [0, {limit or 'inf'}], got {self.level}")

    @property
    def active(self) -> bool:
        return self.kind != "none" and self.level > 0

    def __str__(self) -> str:
        return "none" if not self.active else f"{self.kind}:{self.level:g}"

    @classmethod
    def parse(cls, text: str | None) -> "Noise":
        """'gaussian:0.5', 'salt_pepper:0.1', 'masking:0.3', 'none' (a bare kind gets a typical level)."""
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
