import math

import torch

from aecore.losses import kl_divergence, objective, reconstruction_loss, sparsity_penalty
from aecore.noise import Noise, corrupt


def test_kl_closed_form_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g) * 0.5
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 3, 4, generator=g)
    log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    mc = (log_q - log_p).mean(0)
    assert torch.allclose(kl_divergence(mu, logvar), mc, rtol=0.02, atol=0.02)


def test_kl_is_zero_for_the_prior():
    assert torch.allclose(kl_divergence(torch.zeros(2, 5), torch.zeros(2, 5)), torch.zeros(2))


def test_losses_are_per_image_sums_over_pixels():
    target = torch.full((2, 1, 28, 28), 0.5)
    logits = torch.zeros_like(target)  # sigmoid(0) = 0.5
    assert torch.allclose(reconstruction_loss(logits, target, "bce"), torch.full((2,), 784 * math.log(2)))
    assert torch.allclose(reconstruction_loss(logits, target, "mse"), torch.zeros(2))
    assert torch.allclose(reconstruction_loss(logits, torch.ones_like(target), "l1"), torch.full((2,), 392.0))


def test_objective_adds_beta_times_kl_and_the_sparsity_penalty():
    from aecore.models import ForwardOutput

    x = torch.rand(3, 1, 4, 4)
    out = ForwardOutput(torch.randn(3, 1, 4, 4), torch.randn(3, 2), torch.randn(3, 2), torch.randn(3, 2))
    one, four = objective(out, x, beta=1.0), objective(out, x, beta=4.0)
    assert torch.allclose(four["loss"] - one["loss"], 3 * one["kl"])
    assert torch.allclose(one["loss"], one["recon"] + one["kl"])
    sparse = objective(out, x, beta=1.0, sparsity=0.5)
    assert torch.allclose(sparse["loss"] - one["loss"], 0.5 * out.z.abs().sum(1))
    plain = objective(out._replace(mu=None, logvar=None), x, "mse")  # an AE: no KL term at all
    assert set(plain) == {"loss", "recon"} and torch.equal(plain["loss"], plain["recon"])


def test_sparsity_is_l1_of_the_code():
    assert sparsity_penalty(torch.tensor([[1.0, -2.0], [0.0, 0.5]])).tolist() == [3.0, 0.5]


def test_corruptions_keep_range_and_leave_the_input_alone():
    x = torch.rand(8, 1, 28, 28)
    before = x.clone()
    for text in ["gaussian:0.5", "salt_pepper:0.2", "masking:0.3"]:
        y = corrupt(x, Noise.parse(text), torch.Generator().manual_seed(0))
        assert y.min() >= 0 and y.max() <= 1 and not torch.equal(x, y)
    assert torch.equal(x, before)
    masked = corrupt(x, Noise("masking", 0.3), torch.Generator().manual_seed(0))
    assert 0.25 < (masked == 0).float().mean() < 0.35
    assert corrupt(x, Noise.parse("none")) is x


def test_bad_noise_strings_are_refused():
    for text in ["blur:0.3", "gaussian:abc", "masking:1.5"]:
        try:
            Noise.parse(text)
        except ValueError as e:
            assert str(e)
        else:
            raise AssertionError(text)


def test_bce_matches_pytorch_in_value_and_gradient_including_saturated_logits():
    g = torch.Generator().manual_seed(0)
    logits = torch.cat([torch.randn(4, 1, 28, 28, generator=g) * 5, torch.full((1, 1, 28, 28), 40.0),
                        torch.full((1, 1, 28, 28), -40.0)]).requires_grad_()
    target = torch.rand(6, 1, 28, 28, generator=g).requires_grad_()
    ours = reconstruction_loss(logits, target, "bce")
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
    assert torch.allclose(ours, ref, rtol=1e-6, atol=1e-3)
    gy = torch.rand(6, generator=g)
    ours_grads = torch.autograd.grad(ours, [logits, target], gy)
    ref_grads = torch.autograd.grad(ref, [logits, target], gy)
    for a, b in zip(ours_grads, ref_grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_written_out_squared_error_matches_autograd_in_value_and_both_gradients():
    """losses._SigmoidSquaredError (the `mse` fast path) against autograd's chain: saturated logits, NHWC too."""
    from aecore.losses import squared_error_fast

    g = torch.Generator().manual_seed(0)
    for shape, fmt in (((6, 1, 28, 28), torch.contiguous_format), ((6, 3, 8, 8), torch.channels_last)):
        logits = torch.randn(shape, generator=g) * 5
        logits[0], logits[1] = 40.0, -40.0
        logits = logits.contiguous(memory_format=fmt).requires_grad_()
        target = torch.rand(shape, generator=g).contiguous(memory_format=fmt).requires_grad_()
        ours = squared_error_fast(logits, target)
        ref = (torch.sigmoid(logits) - target).square().flatten(1).sum(1)
        assert torch.allclose(ours, ref, rtol=1e-6, atol=1e-5)
        gy = torch.rand(6, generator=g)
        grads = [torch.autograd.grad(y, [logits, target], gy) for y in (ours, ref)]
        for a, b in zip(*grads):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_bce_trains_on_data_made_in_inference_mode():
    with torch.inference_mode():
        target = torch.rand(2, 1, 4, 4)  # like a cached dataset split first loaded inside an evaluation
    logits = torch.zeros(2, 1, 4, 4, requires_grad=True)
    reconstruction_loss(logits, target, "bce").sum().backward()
    assert torch.allclose(logits.grad, 0.5 - target)
