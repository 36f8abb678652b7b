"""Turning a user's picture into a model input (C, H, W) in [0, 1].

The bytes are untrusted: the format is checked against a short list, the pixel count is read from the header and
refused above MAX_PIXELS before anything is decoded, JPEGs are decoded at a reduced scale, and whatever goes wrong
inside Pillow comes out as ImageError. The picture is then turned upright (EXIF orientation), put on white paper
when it has transparency, scaled by its real bit depth (16-bit greys too), resized and, for grey models, inverted
when it is dark on light.
"""
from __future__ import annotations

import io

import numpy as np
import torch

MAX_PIXELS = 4096 * 4096  # 16.8 megapixels: far more than a 28x28 or 32x32 input needs, far below Pillow's limit
# Pillow's format name -> the name the visitor knows; MPO is how Pillow reads most phone-camera JPEGs.
ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPG", "MPO": "JPG", "WEBP": "WEBP", "GIF": "GIF", "BMP": "BMP"}
ACCEPTED_EXTENSIONS = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
ACCEPTED_TEXT = "PNG, JPG, WEBP, GIF or BMP"
_ALPHA_MODES = ("RGBA", "LA", "La", "RGBa", "PA")
_WIDE_GREY = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


class ImageError(ValueError):
    """A file that is not a readable picture, or one this module refuses (format, size)."""


def to_model_input(data: bytes, shape: tuple[int, int, int], invert: bool | None = None) -> torch.Tensor:
    """Decode picture bytes, convert to grey or RGB as the model expects, resize to (H, W) and scale to [0, 1].

    invert=None inverts dark-on-light pictures (paper scans, drawings on transparent paper), since MNIST-like
    data is light-on-dark. Raises ImageError, and only ImageError, for anything it cannot or will not read.
    """
    from PIL import Image

    c, h, w = (int(s) for s in shape)
    try:
        with Image.open(io.BytesIO(data)) as img:
            _check_header(img)
            if img.format in ("JPEG", "MPO"):  # decode at 1/2, 1/4 or 1/8 scale when that still leaves 4x the input
                side = 4 * max(h, w)
                img.draft("L" if c == 1 else "RGB", (side, side))
            img.load()  # the first frame only, for animated GIF, WEBP and PNG
            _upright(img)
            arr = _pixels(img, c, (w, h))
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"the picture is too large (over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels); "
                         f"at most {_limit_text()} are accepted") from None
    except Image.DecompressionBombWarning:  # only raised when warnings are errors; the size check comes later
        raise ImageError(f"the picture is too large (over {Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels); "
                         f"at most {_limit_text()} are accepted") from None
    except MemoryError:
        raise ImageError("the picture needs too much memory to decode") from None
    except Exception as e:  # noqa: BLE001  untrusted bytes: Pillow's parsers raise OSError, SyntaxError, struct.error...
        raise ImageError(f"not a readable picture ({type(e).__name__}); {ACCEPTED_TEXT} are accepted") from None
    x = torch.from_numpy(arr).unsqueeze(0) if c == 1 else torch.from_numpy(arr).permute(2, 0, 1)
    if invert is None:
        invert = c == 1 and _background(x) > 0.5
    return (1 - x if invert else x).contiguous()


def _limit_text() -> str:
    return f"{MAX_PIXELS / 1e6:.1f} megapixels (e.g. 4096 × 4096)"


def _check_header(img) -> None:
    """Refuse other formats and big pictures from the header alone: nothing has been decoded yet."""
    if img.format not in ACCEPTED_FORMATS:
        raise ImageError(f"{img.format or 'this'} pictures are not accepted; {ACCEPTED_TEXT} are")
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"the picture is {w} × {h} pixels ({w * h / 1e6:.1f} megapixels); at most {_limit_text()} "
                         "are accepted, so please scale it down")


def _upright(img) -> None:
    """Apply the EXIF orientation (phone photos are stored sideways), in place; a broken EXIF block is ignored."""
    from PIL import ImageOps

    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # noqa: BLE001  the pixels are fine; only the orientation tag is unreadable
        pass


def _pixels(img, c: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W) for c == 1 or (H, W, 3), float32 in [0, 1], resized to size = (W, H)."""
    from PIL import Image

    if img.mode in _WIDE_GREY:  # 16-bit PNG ("I;16"), 32-bit integer or float grey: scale by the real range
        small = Image.fromarray(_unit_range(np.asarray(img), img.mode)).resize(size, Image.Resampling.LANCZOS)
        grey = np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)
        return grey if c == 1 else np.repeat(grey[..., None], 3, axis=2)
    img = _on_white(img)
    if img.mode not in ("L", "RGB"):  # 1, CMYK, YCbCr...: through RGB, which every mode converts to
        img = img.convert("RGB")
    img = img.convert("L" if c == 1 else "RGB").resize(size, Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


def _unit_range(a: np.ndarray, mode: str) -> np.ndarray:
    """Grey values of a wide mode to float32 [0, 1]: 16-bit by 65535 (also "I" holding 16-bit values, as older
    Pillows load 16-bit PNGs), floats already in [0, 1] as they are, anything else stretched from lowest to highest."""
    if mode.startswith("I;16"):
        return a.astype(np.float32) / 65535.0
    a = a.astype(np.float64)
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if mode == "F" and 0.0 <= lo and hi <= 1.0:
        scaled = a
    elif mode == "I" and 0.0 <= lo and hi <= 65535.0:
        scaled = a / 65535.0
    else:
        scaled = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0).astype(np.float32)


def _on_white(img):
    """A picture with transparency, put on white paper: a drawing on a transparent background reads as ink on paper
    (which the auto-invert then makes light-on-dark) instead of the black that its hidden colour often is."""
    from PIL import Image

    colour_key = "transparency" in img.info and img.mode in ("1", "L", "RGB")
    if img.mode == "P" or colour_key:  # palette alpha (PNG tRNS, GIF) or a single transparent colour
        img = img.convert("RGBA")
    if img.mode not in _ALPHA_MODES:
        return img
    paper = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(paper, img.convert("RGBA")).convert("RGB")


def _background(x: torch.Tensor) -> float:
    """Mean brightness of the border pixels: the paper, for a scanned digit."""
    border = torch.cat([x[..., 0, :].flatten(), x[..., -1, :].flatten(),
                        x[..., :, 0].flatten(), x[..., :, -1].flatten()])
    return float(border.mean())
