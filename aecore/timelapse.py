"""A training time-lapse: after each epoch, reconstructions of the same test images, decodings of the same prior
samples (VAEs) and the codes of the same test images, so a visitor can scrub through a run (the source's Frey Face
figure: "epoch 1: only eyes and mouth; epoch 20: the face").

`Recorder.capture` takes one `Frame` while training (fit() attaches it to each EpochEvent); `Timelapse` is what a
checkpoint keeps: at most MAX_FRAMES epochs, images as uint8 and codes as 2-D points (a code of more than two
numbers is projected on the principal axes of the last epoch's codes, so the axes stay put while the points move).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .models import Autoencoder

N_IMAGES, N_SAMPLES, N_CODES = 8, 16, 300
MAX_FRAMES = 12
# Bounds for a time-lapse read from a file (checked before it is used; the archive's size is bounded already)
MAX_FRAMES_READ, MAX_IMAGES_READ, MAX_CODES_READ = 64, 64, 2000
KEYS = ("epochs", "image_index", "recon", "code_index", "codes")  # and "samples" for VAEs


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


@dataclass
class Frame:
    """One epoch's snapshot, taken while training."""

    epoch: int
    recon: torch.Tensor  # (N_IMAGES, C, H, W) uint8
    codes: torch.Tensor  # (N_CODES, latent) float32: posterior means for a VAE
    samples: torch.Tensor | None = None  # (N_SAMPLES, C, H, W) uint8, VAEs only

    def to_arrays(self) -> tuple:
        """For a process boundary: numpy arrays pickle as plain bytes (tensors would go through shared memory)."""
        samples = None if self.samples is None else self.samples.numpy()
        return self.epoch, self.recon.numpy(), self.codes.numpy(), samples

    @classmethod
    def from_arrays(cls, arrays: tuple) -> "Frame":
        epoch, recon, codes, samples = arrays
        return cls(int(epoch), torch.from_numpy(recon), torch.from_numpy(codes),
                   None if samples is None else torch.from_numpy(samples))


def fixed_indices(n_test: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which test images a time-lapse follows: the first N_IMAGES reconstructed, N_CODES spread evenly encoded."""
    image_index = torch.arange(min(N_IMAGES, n_test))
    code_index = torch.linspace(0, n_test - 1, min(N_CODES, n_test)).round().long().unique()
    return image_index, code_index


class Recorder:
    """Snapshots of one model on fixed inputs: test images (fixed_indices), and prior draws from a fixed seed."""

    def __init__(self, model: Autoencoder, test_x: torch.Tensor, seed: int = 0):
        self.model = model
        image_index, code_index = fixed_indices(len(test_x))
        self.images, self.code_images = test_x[image_index], test_x[code_index]
        g = torch.Generator().manual_seed(seed)
        self.z = torch.randn(N_SAMPLES, model.spec.latent_dim, generator=g) if model.variational else None

    @torch.inference_mode()
    def capture(self, epoch: int) -> Frame:
        model, was_training = self.model, self.model.training
        device = next(model.parameters()).device
        model.eval()
        try:
            recon = model.reconstruct(self.images.to(device)).cpu()
            codes = model.encode(self.code_images.to(device)).float().cpu()
            samples = None if self.z is None else to_uint8(model.decode(self.z.to(device)).cpu())
        finally:
            model.train(was_training)
        return Frame(epoch, to_uint8(recon), codes, samples)


def keep_epochs(epochs: list[int], limit: int = MAX_FRAMES) -> list[int]:
    """At most `limit` of the epochs, evenly spaced on a log scale (early epochs change most), first and last kept."""
    if len(epochs) <= limit:
        return list(epochs)
    picks = np.unique(np.round(np.geomspace(1, len(epochs), limit)).astype(int) - 1)
    return [epochs[i] for i in picks]


@dataclass
class Timelapse:
    epochs: torch.Tensor  # (E,) int64, the epoch after which each frame was taken
    image_index: torch.Tensor  # (n,) int64: which test images are reconstructed
    recon: torch.Tensor  # (E, n, C, H, W) uint8
    code_index: torch.Tensor  # (k,) int64: which test images' codes are drawn
    codes: torch.Tensor  # (E, k, 2) float32: 2-D codes, or their projection on the last epoch's principal axes
    samples: torch.Tensor | None = None  # (E, m, C, H, W) uint8, VAEs only
    projected: bool = False  # codes were projected (latent size > 2)

    @classmethod
    def from_frames(cls, frames: list[Frame], n_test: int) -> "Timelapse | None":
        """The frames of a run on a test split of n_test images (at most MAX_FRAMES of them kept)."""
        if not frames:
            return None
        wanted = set(keep_epochs([f.epoch for f in frames]))
        frames = [f for f in frames if f.epoch in wanted]
        image_index, code_index = fixed_indices(n_test)
        codes = torch.stack([f.codes for f in frames]).float()
        projected = codes.shape[-1] > 2
        if projected:  # principal axes of the last epoch's codes (the scatter's final picture), applied to every frame
            last = codes[-1] - codes[-1].mean(0)
            axes = torch.linalg.svd(last, full_matrices=False).Vh[:2].T
            codes = (codes - codes[-1].mean(0)) @ axes
        elif codes.shape[-1] == 1:
            codes = torch.cat([codes, torch.zeros_like(codes)], dim=-1)
        samples = [f.samples for f in frames]
        return cls(torch.tensor([f.epoch for f in frames]), image_index, torch.stack([f.recon for f in frames]),
                   code_index, codes, torch.stack(samples) if all(s is not None for s in samples) else None,
                   projected)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {"epochs": self.epochs, "image_index": self.image_index, "recon": self.recon,
               "code_index": self.code_index, "codes": self.codes.half(), "projected": torch.tensor(self.projected)}
        if self.samples is not None:
            out["samples"] = self.samples
        return out

    @classmethod
    def from_tensors(cls, d: dict, image_shape: tuple[int, int, int]) -> "Timelapse":
        """From a checkpoint file: every entry's type and shape checked, else ValueError."""
        if not isinstance(d, dict) or not set(KEYS) <= set(d) or not set(d) <= {*KEYS, "samples", "projected"}:
            raise ValueError("the time-lapse must hold epochs, image_index, recon, code_index and codes")
        if not all(isinstance(v, torch.Tensor) for v in d.values()):
            raise ValueError("the time-lapse must be a table of tensors")
        epochs, image_index, code_index = d["epochs"], d["image_index"], d["code_index"]
        e, n, k = len(epochs), len(image_index), len(code_index)
        checks = [
            (epochs.dtype == torch.int64 and epochs.dim() == 1 and 1 <= e <= MAX_FRAMES_READ, "epochs"),
            (image_index.dtype == torch.int64 and image_index.dim() == 1 and n <= MAX_IMAGES_READ
             and bool((image_index >= 0).all()), "image_index"),
            (code_index.dtype == torch.int64 and code_index.dim() == 1 and k <= MAX_CODES_READ
             and bool((code_index >= 0).all()), "code_index"),
            (d["recon"].dtype == torch.uint8 and tuple(d["recon"].shape) == (e, n, *image_shape), "recon"),
            (d["codes"].is_floating_point() and tuple(d["codes"].shape) == (e, k, 2), "codes"),
        ]
        if "samples" in d:
            s = d["samples"]
            checks.append((s.dtype == torch.uint8 and s.dim() == 5 and s.shape[0] == e and s.shape[1] <= MAX_IMAGES_READ
                           and tuple(s.shape[2:]) == tuple(image_shape), "samples"))
        bad = [name for ok, name in checks if not ok]
        if bad:
            raise ValueError(f"time-lapse entries with the wrong type or shape: {', '.join(bad)}")
        codes = d["codes"].float()
        if not torch.isfinite(codes).all():
            raise ValueError("the time-lapse codes are not finite")
        projected = bool(d["projected"].item()) if "projected" in d and d["projected"].numel() == 1 else False
        return cls(epochs, image_index, d["recon"], code_index, codes, d.get("samples"), projected)
