"""A visitor's picture as a model input (transparency, EXIF orientation, 16-bit greys, bounded decoding) and the
Reconstruct page's uploads (decoded once, every file counted, names shown as typed). Pictures made in memory."""
import io
import struct
import warnings
import zlib
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from aecore import imageio
from aecore.imageio import MAX_PIXELS, ImageError, to_model_input
from ui import recon
from ui.text import plain


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header says w x h and whose pixel data is one byte: only a decoder would notice."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"x") + chunk(b"IEND", b"")


STROKE = (25, 10, 35, 50)  # a vertical bar in a 60 x 60 picture: a "1"


TRANSPARENT = {  # mode, hidden background colour, ink, format, save options
    "RGBA": ("RGBA", (0, 0, 0, 0), (0, 0, 0, 255), "PNG", {}),
    "WEBP": ("RGBA", (0, 0, 0, 0), (0, 0, 0, 255), "WEBP", {"lossless": True}),
    "LA": ("LA", (0, 0), (0, 255), "PNG", {}),
    "L colour key": ("L", 7, 0, "PNG", {"transparency": 7}),  # tRNS on a grey PNG: one grey value is transparent
    "P": ("P", 0, 1, "PNG", {"transparency": 0}),  # palette index 0 transparent, 1 opaque black
    "GIF": ("P", 0, 1, "GIF", {"transparency": 0}),
}


def ink_on_transparent(kind: str) -> bytes:
    """Black strokes on a transparent background whose hidden colour is black too, as drawing programs save it."""
    mode, paper, ink, fmt, kw = TRANSPARENT[kind]
    img = Image.new(mode, (60, 60), paper)
    if mode == "P":
        img.putpalette([0] * 6)
    img.paste(ink, STROKE)
    return encode(img, fmt, **kw)


border_mean = imageio._background  # mean of the border pixels


@pytest.mark.parametrize("kind", list(TRANSPARENT))
def test_a_drawing_on_transparent_paper_becomes_light_strokes_on_dark_like_mnist(kind):
    x = to_model_input(ink_on_transparent(kind), (1, 28, 28))
    assert x.shape == (1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert border_mean(x) < 0.05, "the transparent background is paper (white), then inverted to dark"
    assert x[0, 10:18, 13].min() > 0.9, "the black strokes come out bright"
    rgb = to_model_input(ink_on_transparent(kind), (3, 32, 32))  # colour models get no invert: white paper, ink
    assert border_mean(rgb) > 0.95 and rgb[:, 12:20, 16].max() < 0.1


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("orientation, shape, bright", [(1, (1, 20, 40), "top-left"), (3, (1, 20, 40), "bottom-right"),
                                                        (6, (1, 40, 20), "top-right"), (8, (1, 40, 20), "bottom-left")])
def test_exif_orientation_is_applied(fmt, orientation, shape, bright):
    stored = Image.new("L", (40, 20), 0)  # as the camera stored it: a bright block in the top-left corner
    stored.paste(255, (0, 0, 20, 10))
    exif = stored.getexif()
    exif[0x0112] = orientation
    x = to_model_input(encode(stored, fmt, exif=exif), shape, invert=False)[0]
    h, w = x.shape[0] // 2, x.shape[1] // 2
    quadrants = {"top-left": x[:h, :w], "top-right": x[:h, w:], "bottom-left": x[h:, :w], "bottom-right": x[h:, w:]}
    means = {k: float(q.mean()) for k, q in quadrants.items()}
    assert means[bright] > 0.8 and all(m < 0.2 for k, m in means.items() if k != bright), means


def test_a_broken_exif_block_does_not_lose_the_picture():
    img = Image.new("L", (40, 20), 200)
    x = to_model_input(encode(img, "JPEG", exif=b"Exif\x00\x00not a tiff header"), (1, 28, 28), invert=False)
    assert abs(float(x.mean()) - 200 / 255) < 0.02


def sixteen_bit(arr: np.ndarray) -> bytes:
    img = Image.fromarray(arr.astype(np.uint16))
    assert img.mode == "I;16"
    data = encode(img)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # a real 16-bit PNG
    return data


def test_a_16_bit_gradient_spans_0_to_1_without_saturating():
    ramp = np.tile(np.linspace(0, 65535, 256), (16, 1))
    x = to_model_input(sixteen_bit(ramp), (1, 16, 64), invert=False)[0]
    row = x[8]
    assert row[0] < 0.02 and row[-1] > 0.98
    assert (row.diff() > -1e-3).all(), "monotonic, as the gradient"
    assert float((x > 0.99).float().mean()) < 0.05, "not clipped to white (convert('L') would saturate ~all)"
    assert abs(float(row[32]) - 0.5) < 0.05
    scan = np.full((60, 60), 60000)  # and a 16-bit paper scan is inverted like an 8-bit one
    scan[10:50, 25:35] = 1000
    x = to_model_input(sixteen_bit(scan), (1, 28, 28))
    assert border_mean(x) < 0.1 and x[0, 10:18, 13].min() > 0.9


@pytest.mark.parametrize("level", [0, 1000, 32768, 65535])
def test_16_bit_levels_keep_their_brightness(level):
    x = to_model_input(sixteen_bit(np.full((8, 8), level)), (3, 4, 4), invert=False)
    assert torch.allclose(x, torch.full_like(x, level / 65535), atol=2e-3)


@pytest.mark.parametrize("arr, expected", [
    (np.array([[0, 65535], [32768, 0]], dtype=np.int32), [0, 1, 0.5, 0]),  # "I" holding 16-bit values
    (np.array([[-10, 10], [0, 0]], dtype=np.int32), [0, 1, 0.5, 0.5]),  # "I" beyond 16 bits: stretched
    (np.array([[0, 1], [0.25, 0]], dtype=np.float32), [0, 1, 0.25, 0]),  # "F" in [0, 1]
    (np.array([[2, 6], [4, np.nan]], dtype=np.float32), [0, 1, 0.5, 0]),  # "F" elsewhere: stretched, NaN -> 0
])
def test_32_bit_greys_are_scaled_by_their_range(arr, expected):
    img = Image.fromarray(arr)
    assert img.mode in ("I", "F")
    out = imageio._pixels(img, 1, (2, 2))
    assert np.allclose(out.flatten(), expected, atol=0.02), out


@pytest.fixture(scope="module")
def huge_png():
    return encode(Image.new("1", (13000, 13000), 1))  # 169 megapixels in ~50 kB


@pytest.fixture
def decodes(monkeypatch):
    """The sizes of the pictures actually decoded (ImageFile.load), to show what is refused from the header."""
    sizes, load = [], ImageFile.ImageFile.load

    def spy(self):
        if self.tile:  # still to decode; later calls return at once
            sizes.append(self.size)
        return load(self)
    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return sizes


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_huge_picture_is_refused_from_its_header_without_decoding(huge_png, decodes):
    with pytest.raises(ImageError, match="13000 × 13000 pixels"):
        to_model_input(huge_png, (1, 28, 28))
    with pytest.raises(ImageError, match="5000 × 5000 pixels .*at most 16.8 megapixels"):
        to_model_input(png_header_only(5000, 5000), (1, 28, 28))
    with pytest.raises(ImageError, match="too large"):  # past Pillow's own bomb limit
        to_model_input(png_header_only(100_000, 100_000), (1, 28, 28))
    assert decodes == []
    side = int(MAX_PIXELS ** 0.5)
    with pytest.raises(ImageError, match="not a readable"):  # at the limit: decoding is tried (and fails here)
        to_model_input(png_header_only(side, side), (1, 28, 28))
    assert decodes == [(side, side)]
    with warnings.catch_warnings():  # where warnings are errors, Pillow's bomb warning is refused the same way
        warnings.simplefilter("error")
        with pytest.raises(ImageError, match="too large"):
            to_model_input(huge_png, (1, 28, 28))


@pytest.mark.parametrize("shape, loaded", [((1, 28, 28), (300, 300)), ((3, 32, 32), (300, 300)),
                                           ((1, 200, 200), (1200, 1200))])
def test_a_big_jpeg_is_decoded_at_a_reduced_scale(decodes, shape, loaded):
    img = Image.new("RGB", (2400, 2400), (250, 250, 250))
    img.paste((0, 0, 0), (1000, 400, 1400, 2000))
    x = to_model_input(encode(img, "JPEG"), shape)
    assert decodes == [loaded] and x.shape == shape
    if shape[0] == 1:
        assert border_mean(x) < 0.05 and x[0, shape[1] // 2, shape[2] // 2] > 0.9


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "TGA", "PPM", "PCX", "DDS"])
def test_other_formats_are_refused_by_name(fmt):
    with pytest.raises(ImageError, match=f"{fmt} pictures are not accepted; PNG, JPG, WEBP, GIF or BMP are"):
        to_model_input(encode(Image.new("RGB", (16, 16), (9, 9, 9)), fmt), (1, 28, 28))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_accepted_formats_convert(fmt):
    img = Image.new("RGB", (40, 40), (255, 255, 255))
    img.paste((0, 0, 0), (15, 5, 25, 35))
    x = to_model_input(encode(img, fmt), (1, 28, 28))
    assert border_mean(x) < 0.05 and x[0, 14, 14] > 0.9


def test_an_animated_gif_gives_its_first_frame():
    first = Image.new("L", (30, 30), 0)
    first.paste(255, (10, 10, 20, 20))
    later = [Image.new("L", (30, 30), v) for v in (255, 128)]
    x = to_model_input(encode(first, "GIF", save_all=True, append_images=later, duration=100), (1, 30, 30))
    assert x[0, 15, 15] > 0.95 and x[0, 2, 2] < 0.05


PNG = encode(Image.radial_gradient("L").resize((64, 64)))


@pytest.mark.parametrize("data", [
    b"", b"\x00", b"this is a text file, not a picture\n", b"GIF89a broken", b"\x89PNG\r\n\x1a\n",
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
    PNG[:60], PNG[: len(PNG) // 2], encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")[:300],
    PNG[:33] + bytes(200), bytes(range(256)) * 8,
], ids=["empty", "one byte", "text", "gif", "png signature", "svg", "png header", "half png", "truncated jpeg",
        "png then zeros", "noise"])
def test_unreadable_bytes_raise_image_error_and_nothing_else(data):
    with pytest.raises(ImageError, match="not a readable picture.*PNG, JPG"):
        to_model_input(data, (1, 28, 28))


class Upload:  # what st.file_uploader hands over: a name, a size and the bytes
    def __init__(self, name: str, data: bytes, size: int | None = None):
        self.name, self._data, self.size, self.reads = name, data, len(data) if size is None else size, 0

    def getvalue(self) -> bytes:
        self.reads += 1
        return self._data


@pytest.fixture
def calls(monkeypatch):
    """Counts real decodes behind convert_uploads, with an empty cache."""
    seen = []

    def counting(data, shape):
        seen.append(len(data))
        return to_model_input(data, shape)
    monkeypatch.setattr(recon, "_cache", OrderedDict())
    monkeypatch.setattr(recon, "to_model_input", counting)
    return seen


def digit(v: int) -> bytes:
    img = Image.new("L", (20, 20), 255)
    img.paste(0, (8, 2, 8 + v % 5 + 1, 18))
    return encode(img)


def test_a_rerun_does_not_decode_again(calls):
    files = [Upload("a.png", digit(1)), Upload("b.png", digit(2)), Upload("copy of a.png", digit(1)),
             Upload("bad.png", b"not a picture")]
    first, errors = recon.convert_uploads(files, (1, 28, 28))
    assert len(first) == 3 and len(errors) == 1 and len(calls) == 3  # same bytes under two names: one decode
    again, errors_again = recon.convert_uploads(files, torch.Size([1, 28, 28]))
    assert len(calls) == 3, "the rerun decoded nothing, refusals included"
    assert errors_again == errors and all(torch.equal(first[k], again[k]) for k in first)
    again["1. a.png"].fill_(0.5)  # callers get copies: the cache is not changed through them
    assert torch.equal(recon.convert_uploads(files, (1, 28, 28))[0]["1. a.png"], first["1. a.png"])
    recon.convert_uploads(files, (3, 32, 32))
    assert len(calls) == 6, "another shape is another conversion"
    for i in range(recon._CACHE_ENTRIES + 10):
        recon.convert_uploads([Upload(f"{i}.png", encode(Image.new("L", (4, 4), i)))], (1, 8, 8))
    assert len(recon._cache) == recon._CACHE_ENTRIES, "bounded"


def test_every_file_counts_even_with_the_same_name_and_extras_are_reported(calls):
    files = [Upload("digit.png", digit(i)) for i in range(20)]
    converted, errors = recon.convert_uploads(files, (1, 28, 28))
    assert list(converted) == [f"{i}. digit.png" for i in range(1, 17)]
    assert errors == ["Only the first 16 pictures are used; 4 more were ignored."]
    assert all(f.reads == 0 for f in files[16:])
    _, errors = recon.convert_uploads(files[:17], (1, 28, 28))
    assert errors == ["Only the first 16 pictures are used; 1 more was ignored."]


def test_an_oversized_file_is_not_read(calls):
    big = Upload("big.png", b"", size=recon.MAX_UPLOAD_BYTES + 1)
    converted, errors = recon.convert_uploads([big, Upload("ok.png", digit(3))], (1, 28, 28))
    assert list(converted) == ["2. ok.png"] and big.reads == 0
    assert errors == ["Picture 1, `big.png`: larger than 10 MB; please upload a smaller picture."]


@pytest.mark.parametrize("name, shown", [
    ("[x](http://evil).png", "`[x](http://evil).png`"), ("![](http://img/a.png)", "`![](http://img/a.png)`"),
    ("a`b.png", "``a`b.png``"), ("`tick.png", "`` `tick.png ``"), ("two\nlines <b>.png", "`two lines <b>.png`"),
    ("", "`unnamed`"), ("x" * 200, "`" + "x" * 79 + "…`"),
])
def test_file_names_in_messages_are_code_spans(calls, name, shown):
    _, errors = recon.convert_uploads([Upload(name, b"not a picture")], (1, 28, 28))
    assert errors[0].startswith(f"Picture 1, {shown}: not a readable picture")


def test_the_page_shows_upload_names_as_typed_never_as_markdown():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../app.py", default_timeout=120).run().switch_page("pages/reconstruct.py").run()
    evil = [("[x](http://evil).png", b"no"), ("![](http://img/a).png", digit(4)), ("![](http://img/a).png", digit(2))]
    uploader = next(u for u in at.file_uploader if u.label.startswith("Your pictures"))
    uploader.set_value([(name, data, "image/png") for name, data in evil]).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Picture 1, `[x](http://evil).png`: not a readable picture "
                                           "(UnidentifiedImageError); PNG, JPG, WEBP, GIF or BMP are accepted."]
    shown = next(c.value for c in at.caption if "Left to right" in c.value)
    assert shown == plain("Left to right: 2. ![](http://img/a).png, 3. ![](http://img/a).png") and "](" not in shown
