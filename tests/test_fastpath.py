"""The CPU fast paths compute the same layers: outputs and gradients match the plain PyTorch ones."""
import contextlib

import pytest
import torch
from torch import nn

from aecore import fastlinear
from aecore.fastpath import fast_kernels
from aecore.models import ModelSpec, build_model
from aecore.train import TrainConfig, loss_parts


CPU = torch.device("cpu")
CONV_VAE = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))  # conv models always run in the fast-path mode


def outputs_and_grads(layer, x, fast):
    layer.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    ctx = fast_kernels(CONV_VAE, CPU) if fast else torch.autograd.graph.saved_tensors_hooks(
        lambda t: t, lambda t: t)
    with ctx:
        y = layer(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return y.detach(), x.grad, [p.grad.clone() for p in layer.parameters()]


@pytest.mark.parametrize("layer, shape", [
    (nn.Conv2d(32, 1, 4), (4, 32, 31, 31)),  # the conv VAE's last layer: few output channels
    (nn.Conv2d(32, 3, 4), (2, 32, 35, 35)),
    (nn.ConvTranspose2d(64, 64, 3, stride=2), (4, 64, 7, 7)),  # odd output sizes: 7 -> 15
    (nn.ConvTranspose2d(64, 32, 3, stride=2), (2, 64, 15, 11)),
])
def test_fast_paths_match_the_plain_layers(layer, shape):
    torch.manual_seed(0)
    layer = layer.to(memory_format=torch.channels_last)
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    plain, fast = outputs_and_grads(layer, x, False), outputs_and_grads(layer, x, True)
    assert torch.allclose(plain[0], fast[0], atol=1e-4, rtol=1e-4)
    assert torch.allclose(plain[1], fast[1], atol=1e-4, rtol=1e-4)
    for a, b in zip(plain[2], fast[2]):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)


def test_a_first_forward_in_inference_mode_does_not_break_later_training():
    # The app evaluates a model (inference_mode) before anyone trains one; cached kernels must stay trainable.
    layer = nn.Conv2d(32, 2, 5).to(memory_format=torch.channels_last)  # a shape no other test builds first
    x = torch.randn(2, 32, 12, 12).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), fast_kernels(CONV_VAE, CPU):
        layer(x)
    plain, fast = outputs_and_grads(layer, x, False), outputs_and_grads(layer, x, True)
    for a, b in zip(plain[2], fast[2]):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)


@pytest.mark.skipif(not fastlinear.AVAILABLE, reason="this PyTorch build has no oneDNN")
@pytest.mark.parametrize("features", [(784, 512), (512, 784), (3136, 32), (32, 3136), (256, 512)])
def test_onednn_linear_matches_the_plain_layer(features):
    torch.manual_seed(0)
    layer = nn.Linear(*features)
    x = torch.rand(100, features[0])
    with fast_kernels(CONV_VAE, CPU):
        assert layer(x).grad_fn.name() == "_OneDNNLinearBackward"  # the fast path is really taken
    plain, fast = outputs_and_grads(layer, x, False), outputs_and_grads(layer, x, True)
    assert torch.allclose(plain[0], fast[0], atol=1e-5, rtol=1e-4)
    for a, b in zip([plain[1], *plain[2]], [fast[1], *fast[2]]):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_small_layers_and_other_shapes_stay_native():
    for layer, inp in ((nn.Linear(256, 2), torch.rand(100, 256)), (nn.Linear(784, 512), torch.rand(4, 3, 784))):
        with fast_kernels(CONV_VAE, CPU):
            y = layer(inp)
        assert y.grad_fn.name() != "_OneDNNLinearBackward"
        assert torch.allclose(y, layer(inp))


def test_a_whole_mlp_vae_loss_and_gradients_match_with_and_without_fast_paths():
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (1, 28, 28), 2, True))
    x, cfg = torch.rand(32, 1, 28, 28), TrainConfig()
    results = []
    for fast in (False, True):
        model.zero_grad()
        g = torch.Generator().manual_seed(0)
        with fast_kernels(model, CPU) if fast else contextlib.nullcontext():
            loss = loss_parts(model, x, cfg, g)["loss"].mean()
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)


def test_only_models_with_something_to_gain_pay_for_the_fast_path_mode():
    on = lambda family, z: not isinstance(  # noqa: E731
        fast_kernels(build_model(ModelSpec(family, (1, 28, 28), z, False)), CPU), contextlib.nullcontext)
    assert on("conv_ae", 2) and on("mlp", 2)  # convs; the 784 -> 512 layer
    assert not on("linear", 50)  # 784 -> 50: below the size where oneDNN gains
