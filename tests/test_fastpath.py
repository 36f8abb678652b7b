"""The CPU fast paths compute the same layers: outputs and gradients match the plain PyTorch ones."""
import pytest
import torch
from torch import nn

from aecore.fastpath import fast_kernels
from aecore.models import ModelSpec, build_model


def outputs_and_grads(layer, x, fast):
    layer.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))  # fast_kernels only looks at the spec
    ctx = fast_kernels(model, torch.device("cpu")) if fast else torch.autograd.graph.saved_tensors_hooks(
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
    model = build_model(ModelSpec("conv_vae", (1, 28, 28), 2, True))
    with torch.inference_mode(), fast_kernels(model, torch.device("cpu")):
        layer(x)
    plain, fast = outputs_and_grads(layer, x, False), outputs_and_grads(layer, x, True)
    for a, b in zip(plain[2], fast[2]):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)
