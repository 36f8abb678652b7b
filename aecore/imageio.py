"""Turning a user's picture into a model input (C, H, W) in [0, 1]."""
from __future__ import annotations

import io

import numpy as np
import torch


class ImageError(ValueError):
    """A file that is not a readable picture."""


def to_model_input(data: bytes, shape: tuple[int, int, int], invert: bool | None = None) -> torch.Tensor:
    """Decode PNG/JPG bytes, convert to grey or RGB as the model expects, resize to (H, W) and scale to [0, 1].

    invert=None inverts dark-on-light pictures (paper scans), since MNIST-like data is light-on-dark.
    """
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"not a readable PNG or JPG image ({type(e).__name__})") from None
    img = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    x = torch.from_numpy(arr).unsqueeze(0) if c == 1 else torch.from_numpy(arr).permute(2, 0, 1)
    if invert is None:
        invert = c == 1 and _background(x) > 0.5
    return (1 - x if invert else x).contiguous()


def _background(x: torch.Tensor) -> float:
    """Mean brightness of the border pixels: the paper, for a scanned digit."""
    border = torch.cat([x[..., 0, :].flatten(), x[..., -1, :].flatten(), x[..., :, 0].flatten(), x[..., :, -1].flatten()])
    return float(border.mean())
