import json

import pytest
import torch
from torch import nn

from aecore.catalog import MODELS
from aecore.models import FAMILIES, UPSAMPLE_MODES, ModelSpec, SpecError, build_model, count_parameters

SHAPES = [(1, 28, 28), (1, 28, 20), (3, 32, 32), (1, 8, 8)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variational", [False, True])
def test_every_family_round_trips_shapes(family, shape, variational):
    model = build_model(ModelSpec(family, shape, latent_dim=3, variational=variational))
    x = torch.rand(4, *shape)
    out = model(x)
    assert out.logits.shape == x.shape
    assert out.z.shape == (4, 3)
    assert model.decode(out.z).min() >= 0 and model.decode(out.z).max() <= 1
    assert (out.mu is not None) == variational


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("upsample", UPSAMPLE_MODES)
@pytest.mark.parametrize("family", ["conv_ae", "conv_vae"])
def test_every_upsampling_gives_the_input_shape(family, upsample, shape):
    model = build_model(ModelSpec(family, shape, 4, family == "conv_vae", upsample=upsample))
    assert model(torch.rand(2, *shape)).logits.shape == (2, *shape)


def test_conv_vae_matches_the_lecture_layer_by_layer():
    model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))
    assert count_parameters(model) == 96_677
    enc = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in enc] == [
        (1, 32, (3, 3), (2, 2), (1, 1)), (32, 64, (3, 3), (2, 2), (1, 1))]
    assert (model.fc_mu.in_features, model.fc_mu.out_features) == (3136, 2)
    assert (model.fc_logvar.in_features, model.fc_logvar.out_features) == (3136, 2)
    dec = list(model.decoder)
    assert (dec[0].in_features, dec[0].out_features) == (2, 3136)
    convs = [m for m in dec if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in convs] == [
        ("ConvTranspose2d", 64, 64, (3, 3), (2, 2)), ("ConvTranspose2d", 64, 32, (3, 3), (2, 2)),
        ("Conv2d", 32, 1, (4, 4), (1, 1))]
    # the lecture's sizes: 7 -> 15 -> 31 -> 28
    h = dec[2](dec[1](dec[0](torch.zeros(1, 2))))
    sizes = [h.shape[-1]]
    for m in dec[3:]:
        h = m(h)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            sizes.append(h.shape[-1])
    assert sizes == [7, 15, 31, 28]


def test_linear_ae_is_the_lectures_784_50_784():
    model = build_model(MODELS["linear_ae"].spec((1, 28, 28)))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 50), (50, 784)]


def test_conv_ae_has_a_real_bottleneck():
    model = build_model(MODELS["conv_ae"].spec((1, 28, 28)))
    x = torch.rand(2, 1, 28, 28)
    code = model.encode(x)
    assert code.shape == (2, 32)
    assert code[0].numel() * 20 < x[0].numel(), "the code is a small fraction of the image"


def test_upsampling_variants_differ_only_in_the_upsampling_layers():
    def parts(up):
        model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True, upsample=up))
        return repr(model.encoder), [repr(m) for m in model.decoder]

    base_encoder, base = parts("transposed")
    for up in UPSAMPLE_MODES[1:]:
        encoder, other = parts(up)
        assert encoder == base_encoder and len(other) == len(base)
        assert {i for i, (a, b) in enumerate(zip(base, other)) if a != b} == {3, 5}, up  # the two upsampling blocks


def test_subpixel_icnr_starts_like_nearest_upsampling():
    from aecore.upsampling import SubPixelUpsample

    block = SubPixelUpsample(3, 2)
    y = block(torch.rand(1, 3, 5, 5))
    # ICNR: the four sub-pixels of each 2x2 block start equal, so there is no initial checkerboard
    assert torch.allclose(y[..., 0::2, 0::2], y[..., 1::2, 1::2])
    assert torch.allclose(y[..., 0::2, 1::2], y[..., 1::2, 0::2])


@pytest.mark.parametrize("extra", [(0, 0), (1, 1), (1, 0), (0, 1)])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_subpixel_upsampling_gives_the_values_and_gradients_of_pixel_shuffle_then_replicate_pad(extra, fmt):
    """forward (regrouped channels, one copy) against the plain conv -> PixelShuffle -> pad, in both layouts."""
    from aecore.upsampling import SubPixelUpsample

    torch.manual_seed(0)
    block = SubPixelUpsample(8, 3, extra).to(memory_format=fmt)
    for w in (block.conv.weight, block.conv.bias):  # away from ICNR's equal sub-pixels, so a mix-up would show
        w.data.add_(torch.randn_like(w))
    x, g = torch.randn(4, 8, 5, 6).contiguous(memory_format=fmt), torch.randn(4, 3, 10 + extra[0], 12 + extra[1])
    plain = lambda t: nn.functional.pad(block.shuffle(block.conv(t)), block.pad, mode="replicate")  # noqa: E731
    results = []
    for fn in (block, plain):
        xi = x.clone().requires_grad_()
        y = fn(xi)
        y.backward(g)
        results.append((y.detach(), xi.grad, block.conv.weight.grad.clone(), block.conv.bias.grad.clone()))
        block.zero_grad()
    assert results[0][0].is_contiguous(memory_format=fmt)
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-5), extra


def test_spec_is_json_serialisable_and_round_trips():
    spec = ModelSpec("conv_ae", (3, 32, 32), 8, upsample="subpixel")
    assert ModelSpec.from_dict(json.loads(spec.to_json())) == spec


@pytest.mark.parametrize("bad", [
    dict(family="rnn"), dict(family="conv_vae", input_shape=(1, 30, 30)), dict(family="mlp", latent_dim=0),
    dict(family="conv_ae", upsample="magic"), dict(family="conv_ae", width=0), dict(family="conv_ae", width=65),
])
def test_bad_specs_are_refused_with_a_message(bad):
    with pytest.raises(SpecError, match=r"\w+"):
        ModelSpec(**bad)


def test_the_conv_ae_width_scales_every_layer_and_survives_json():
    narrow, wide = (ModelSpec("conv_ae", (1, 28, 28), 8, width=w) for w in (8, 16))
    convs = lambda spec: [m.out_channels for m in build_model(spec).modules()  # noqa: E731
                          if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert convs(wide)[:5] == [16, 32, 64, 128, 256] and convs(narrow)[:5] == [8, 16, 32, 64, 128]
    assert convs(narrow)[5:] == [64, 32, 8, 1]  # the decoder mirrors it down to one channel
    assert ModelSpec.from_dict(json.loads(narrow.to_json())) == narrow
    with pytest.raises(SpecError, match="width"):
        ModelSpec.from_dict({**narrow.to_dict(), "width": "8"})
    assert ModelSpec.from_dict({k: v for k, v in wide.to_dict().items() if k != "width"}) == wide  # older files
