"""Tests for aecore.checkerboard: transposed-conv arithmetic, overlap maps, artifact score."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aecore import checkerboard as cb


def _tconv_ones(shape, k, s, p=0, op=0, layers=1):
    """Reference path count: conv_transpose2d of all-ones input with all-ones kernels."""
    x = torch.ones(1, 1, *shape, dtype=torch.float64)
    for _ in range(layers):
        x = F.conv_transpose2d(x, torch.ones(1, 1, k, k, dtype=torch.float64),
                               stride=s, padding=p, output_padding=op)
    return x[0, 0].numpy()


def _smooth_image(seed, size=64, sigma=3.0):
    """Gaussian-blurred noise (non-periodic borders), scaled to std 0.2 around 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(-8, 9)
    g = np.exp(-t**2 / (2 * sigma**2))
    g /= g.sum()
    img = rng.standard_normal((size, size))
    for axis in (0, 1):
        img = np.apply_along_axis(lambda v: np.convolve(v, g, mode="same"), axis, img)
    return (img - img.mean()) / img.std() * 0.2 + 0.5


def _checker(size=64):
    i, j = np.mgrid[:size, :size]
    return (-1.0) ** (i + j)


# ----------------------------------------------------------- worked examples
def test_worked_example_6x4_k3_s2():
    steps = cb.transposed_conv_steps(np.arange(24.0).reshape(6, 4), np.ones((3, 3)), stride=2)
    assert steps.zero_inserted.shape == (11, 7)
    assert steps.padded.shape == (15, 11)  # padded by 2 on each side
    assert steps.output.shape == (13, 9)
    assert cb.transposed_output_size(6, 3, 2) == 13 and cb.transposed_output_size(4, 3, 2) == 9
    assert np.array_equal(cb.zero_insert(np.ones((6, 4)), 2)[::2, ::2], np.ones((6, 4)))
    assert cb.zero_insert(np.ones((6, 4)), 2).sum() == 24


def test_worked_example_stamping():
    steps = cb.transposed_conv_steps([[7, 10], [7, 10]], [[1, 0], [2, 0]])
    assert np.array_equal(steps.output, [[7, 10, 0], [21, 30, 0], [14, 20, 0]])
    assert np.array_equal(steps.kernel_flipped, [[0, 2], [0, 1]])


# ------------------------------------------------- construction == PyTorch
def test_steps_match_conv_transpose2d_grid():
    rng = np.random.default_rng(0)
    checked = 0
    for k, s, p, d in itertools.product((1, 2, 3, 4), (1, 2, 3), (0, 1, 2, 4), (1, 2)):
        for op in cb.legal_output_paddings(s, d):
            x = rng.standard_normal((4, 5))
            w = rng.standard_normal((k, k + 1))  # non-square kernel too
            try:
                steps = cb.transposed_conv_steps(x, w, s, p, op, d)
            except ValueError:
                continue  # illegal combination (empty output); sizes are tested separately
            ref = F.conv_transpose2d(torch.tensor(x)[None, None], torch.tensor(w)[None, None],
                                     stride=s, padding=p, output_padding=op, dilation=d)[0, 0]
            np.testing.assert_allclose(steps.output, ref.numpy(), atol=1e-10)
            checked += 1
    assert checked > 150


def test_output_size_matches_pytorch_and_rejects_illegal():
    x = torch.zeros(1, 1, 5, 3)
    legal = illegal = 0
    for k, s, p, op, d in itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 3, 6), (0, 1, 2), (1, 2)):
        try:
            with torch.no_grad():
                shape = torch.nn.ConvTranspose2d(1, 1, k, s, p, op, dilation=d)(x).shape[-2:]
            if min(shape) == 0:  # PyTorch returns an empty tensor; we call that illegal
                raise RuntimeError
        except RuntimeError:  # PyTorch refuses if either axis is illegal; so must we
            raised = 0
            for n in (5, 3):
                try:
                    cb.transposed_output_size(n, k, s, p, op, d)
                except ValueError:
                    raised += 1
            assert raised > 0, (k, s, p, op, d)
            illegal += 1
            continue
        assert (cb.transposed_output_size(5, k, s, p, op, d),
                cb.transposed_output_size(3, k, s, p, op, d)) == tuple(shape)
        legal += 1
    assert legal > 50 and illegal > 20


@pytest.mark.parametrize("kwargs", [
    dict(size_in=4, kernel=0), dict(size_in=4, kernel=3, stride=0), dict(size_in=0, kernel=3),
    dict(size_in=4, kernel=3, stride=2, output_padding=2), dict(size_in=4, kernel=3, padding=-1),
    dict(size_in=1, kernel=1, padding=1), dict(size_in=4, kernel=2.5), dict(size_in=4, kernel=3, dilation=0),
])
def test_illegal_params_raise(kwargs):
    with pytest.raises(ValueError):
        cb.transposed_output_size(**kwargs)


def test_legal_output_paddings():
    assert cb.legal_output_paddings(1) == [0]
    assert cb.legal_output_paddings(2) == [0, 1]
    assert cb.legal_output_paddings(1, dilation=3) == [0, 1, 2]


# ------------------------------------------------------------- overlap maps
def test_overlap_1d_patterns():
    interior = slice(4, -4)
    k3s2 = cb.overlap_map_1d(16, 3, 2)[interior]
    assert set(k3s2[::2]) | set(k3s2[1::2]) == {1, 2} and len(set(k3s2[::2])) == 1
    assert np.all(k3s2[:-1] != k3s2[1:])  # strictly alternating
    assert np.all(cb.overlap_map_1d(16, 4, 2)[interior] == 2)
    assert np.all(cb.overlap_map_1d(16, 3, 1)[interior] == 3)
    assert len(cb.overlap_map_1d(16, 3, 2, padding=1, output_padding=1)) == 32  # doubles


@pytest.mark.parametrize("k,s", [(3, 2), (4, 2), (3, 1), (5, 4), (6, 3), (5, 3)])
def test_pattern_period_matches_overlap(k, s):
    v = cb.overlap_map_1d(40, k, s)[k + 2: -(k + 2)]
    period = cb.pattern_period(k, s)
    if period is None:
        assert len(set(v)) == 1
    else:
        assert np.array_equal(v[period:], v[:-period])
        assert all(not np.array_equal(v[q:], v[:-q]) for q in range(1, period))


@pytest.mark.parametrize("k,s,p,op", [(3, 2, 0, 0), (3, 2, 1, 1), (4, 2, 1, 0), (3, 1, 1, 0), (5, 3, 2, 2)])
@pytest.mark.parametrize("layers", [1, 2])
def test_overlap_map_equals_conv_transpose_of_ones(k, s, p, op, layers):
    got = cb.overlap_map((5, 7), k, s, p, op, layers=layers)
    assert got.dtype.kind == "i"
    np.testing.assert_array_equal(got, _tconv_ones((5, 7), k, s, p, op, layers))


# ---------------------------------------------------------- artifact score
def test_score_ranks_checkerboard_above_smooth():
    for seed in range(3):
        smooth = _smooth_image(seed)
        i, j = np.mgrid[:64, :64]
        gradient = (i + 2 * j) / 192.0
        for src in (smooth, gradient):
            clean, dirty = cb.artifact_score(src), cb.artifact_score(src + 0.1 * _checker())
            assert clean < 0.1, clean
            assert dirty > 5.0 and dirty > clean + 5.0


def test_score_robust_on_constant_and_batches():
    for const in (np.zeros((64, 64)), np.full((2, 1, 32, 32), 0.7), torch.ones(3, 1, 16, 16)):
        s = cb.artifact_score(const)
        assert s == 0.0 and not math.isnan(s)
    mixed = np.stack([np.full((64, 64), 0.5), _smooth_image(0) + 0.1 * _checker()])
    assert cb.artifact_score(mixed) > 5.0  # one constant image in the batch does no harm
    spec = cb.artifact_spectrum(torch.tensor(mixed)[:, None])
    assert spec.shape == (64, 64) and np.isfinite(spec).all()
    assert spec[32, 32] == spec.max()  # unshifted: Nyquist bin at (H/2, W/2)


# ------------------------------------------------------------ Distill decoders
def test_distill_decoder_shapes_and_determinism():
    for cfg in cb.DISTILL_CONFIGS:
        out = cb.distill_outputs(cfg, n=2, seed=3)
        assert out.shape == (2, 1, 64, 64) and torch.all((out >= 0) & (out <= 1))
        assert torch.equal(out, cb.distill_outputs(cfg, n=2, seed=3))
    assert cb.distill_outputs("resize_all", n=1, size=32, latent="constant").shape == (1, 1, 32, 32)
    n_tconv = [sum(isinstance(m, torch.nn.ConvTranspose2d) for m in cb.distill_decoder(c).modules())
               for c in cb.DISTILL_CONFIGS]
    assert n_tconv == [2, 1, 0]
    with pytest.raises(ValueError):
        cb.distill_decoder("nope")


def test_deconv_decoders_score_higher_than_resize_conv():
    scores = {cfg: [cb.artifact_score(cb.distill_outputs(cfg, n=4, seed=s)) for s in range(5)]
              for cfg in cb.DISTILL_CONFIGS}
    for a, b in zip(scores["deconv_last_two"], scores["resize_all"]):
        assert a > b + 1.0
    assert np.mean(scores["deconv_last"]) > np.mean(scores["resize_all"]) + 1.0
