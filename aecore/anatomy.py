"""Inside a model: its layers with output shapes and parameter counts, one latent dimension at a time, what its first
convolution learned, and how close a linear autoencoder comes to PCA.

Layers are run one by one on plain modules (not through the fast paths), so every shape is the layer's own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm

from .metrics import encode_all, mse_per_image


@dataclass(frozen=True)
class Layer:
    part: str  # input, encoder, code, decoder
    name: str  # the module's name, e.g. "encoder.3"
    kind: str  # the module's class, e.g. "Conv2d(32 -> 64, k3, s2)"
    output: tuple  # output shape without the batch dimension
    params: int


def _describe(layer: torch.nn.Module) -> str:
    if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
        return (f"{type(layer).__name__}({layer.in_channels} → {layer.out_channels}, k{layer.kernel_size[0]}, "
                f"s{layer.stride[0]})")
    if isinstance(layer, torch.nn.Linear):
        return f"Linear({layer.in_features} → {layer.out_features})"
    return type(layer).__name__


def _children(part: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    kids = list(part.named_children())
    return kids if kids and isinstance(part, torch.nn.Sequential) else [("", part)]


@torch.no_grad()
def layer_table(model) -> list[Layer]:
    """Every layer on the way from image to code to image, with its output shape and parameter count (the
    lecture annotates the same: `[batch, 256, 7, 7]`)."""
    was_training = model.training
    model.eval()
    h = torch.zeros(1, *model.spec.input_shape)
    rows = [Layer("input", "", "image", tuple(h.shape[1:]), 0)]

    def run(part_name: str, part: torch.nn.Module, x):
        for name, layer in _children(part):
            x = layer(x)
            rows.append(Layer(part_name, f"{part_name}.{name}".rstrip("."), _describe(layer), tuple(x.shape[1:]),
                              sum(p.numel() for p in layer.parameters())))
        return x

    h = run("encoder", model.encoder, h)
    notes = {"fc_mu": " (the code's mean)", "fc_logvar": " (its log-variance)", "fc_z": " (the code)"}
    code = None
    for head in (["fc_mu", "fc_logvar"] if model.variational else ["fc_z"]):
        layer = getattr(model, head)
        out = layer(h)
        rows.append(Layer("code", head, _describe(layer) + notes[head], tuple(out.shape[1:]),
                          sum(p.numel() for p in layer.parameters())))
        code = out if head != "fc_logvar" else code
    run("decoder", model.decoder, code)
    model.train(was_training)
    return rows


@torch.no_grad()
def traversals(model, z0: torch.Tensor, dims, steps: int = 9, span: float = 0.95) -> tuple[torch.Tensor, np.ndarray]:
    """For each latent dimension in `dims`, decode z0 with that one dimension swept over the prior's central `span`
    probability (evenly spaced in probability, as Kingma & Welling's manifold), the others fixed: (len(dims) *
    steps, C, H, W) images, row by row, and the swept values."""
    tail = (1 - span) / 2
    values = norm.ppf(np.linspace(tail, 1 - tail, steps))
    codes = z0.reshape(1, -1).repeat(len(dims) * steps, 1)
    for row, d in enumerate(dims):
        codes[row * steps : (row + 1) * steps, d] = torch.as_tensor(values, dtype=codes.dtype)
    model.eval()
    return model.decode(codes), values


def first_conv(model) -> torch.nn.Conv2d | None:
    return next((m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)), None)


def high_frequency_share(filters: torch.Tensor, size: int = 16, cutoff: float = 0.25) -> torch.Tensor:
    """Share of each filter's spectral energy above `cutoff` cycles per pixel (Nyquist is 0.5), its kernel zero-padded
    to size x size before the FFT: (filters,). Higher means sharper, more edge-like filters."""
    w = filters.detach().reshape(-1, *filters.shape[-2:]).double()
    power = torch.fft.fft2(w, s=(size, size)).abs().square()
    f = torch.fft.fftfreq(size, dtype=torch.float64)
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    return (power[:, radius > cutoff].sum(1) / power.sum((1, 2)).clamp_min(1e-30)).float()


@dataclass(frozen=True)
class PcaComparison:
    k: int
    pca_mse: float  # test MSE per pixel of PCA with k components
    ae_mse: float  # test MSE per pixel of the linear AE with a k-number code
    angles_deg: np.ndarray  # principal angles between the AE decoder's column space and the PCA subspace
    pca_reconstruction: torch.Tensor
    ae_reconstruction: torch.Tensor


@torch.no_grad()
def compare_with_pca(model, train_x: torch.Tensor, test_x: torch.Tensor, shown: int = 8) -> PcaComparison:
    """PCA (scikit-learn) with as many components as the linear AE's code, fitted on the training images, against
    the AE on the test images; and the principal angles (SciPy) between the subspaces the two decode from."""
    from scipy.linalg import subspace_angles
    from sklearn.decomposition import PCA

    k = model.spec.latent_dim
    pca = PCA(n_components=k, random_state=0).fit(train_x.flatten(1).numpy())
    flat = test_x.flatten(1).numpy()
    pca_rec = torch.from_numpy(pca.inverse_transform(pca.transform(flat)).astype(np.float32)).view_as(test_x)
    model.eval()
    ae_rec = model.decode(encode_all(model, test_x))
    decoder_linear = next(m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear))
    angles = np.degrees(subspace_angles(decoder_linear.weight.detach().double().numpy(), pca.components_.T))
    return PcaComparison(k, mse_per_image(pca_rec.clamp(0, 1), test_x).mean().item(),
                         mse_per_image(ae_rec, test_x).mean().item(), np.sort(angles),
                         pca_rec[:shown].clamp(0, 1), ae_rec[:shown])


@torch.no_grad()
def code_clouds(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each image's code: for a VAE the Gaussian q(z|x) as (means, standard deviations), both (N, latent); for a
    plain AE the point itself and None: 'an AE gives a fixed vector, a VAE a distribution'."""
    model.eval()
    if not model.variational:
        return encode_all(model, x), None
    mus, sigmas = [], []
    for i in range(0, len(x), 250):
        mu, logvar = model.encode_distribution(x[i : i + 250])
        mus.append(mu)
        sigmas.append(torch.exp(0.5 * logvar))
    return torch.cat(mus), torch.cat(sigmas)


def ellipse_paths(means: torch.Tensor, sigmas: torch.Tensor, points: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """x and y of axis-aligned 1-sigma ellipses around 2-D means, one closed path each, separated by NaN (one plotly
    trace draws them all)."""
    t = np.linspace(0, 2 * np.pi, points)
    m, s = means[:, :2].numpy()[:, None, :], sigmas[:, :2].numpy()[:, None, :]
    xy = m + s * np.stack([np.cos(t), np.sin(t)], -1)[None]  # (N, points, 2)
    gap = np.full((len(xy), 1, 2), np.nan)
    path = np.concatenate([xy, gap], 1).reshape(-1, 2)
    return path[:, 0], path[:, 1]


@dataclass(frozen=True)
class CopyTest:
    """How much an AE copies: its reconstructions of clean images, and what it does with noise added to them."""

    latent_dim: int
    pixels: int
    clean_psnr: float  # reconstructions of the clean test images (dB)
    denoised_psnr: float  # reconstructions of the noisy images, against the clean ones (dB)
    noisy_psnr: float  # the noisy images themselves, against the clean ones (dB)
    noise_passed: float  # share of the input noise's energy that reaches the output: |f(x+n) - f(x)|² / |n|²


@torch.no_grad()
def copy_test(model, x: torch.Tensor, noisy: torch.Tensor) -> CopyTest:
    """An AE whose code is not smaller than its input can learn the identity: it copies, noise included."""
    from .metrics import psnr_per_image

    clean_out, noisy_out = model.reconstruct(x), model.reconstruct(noisy)
    passed = (noisy_out - clean_out).pow(2).sum() / (noisy - x).pow(2).sum().clamp_min(1e-12)
    return CopyTest(model.spec.latent_dim, x[0].numel(), float(psnr_per_image(clean_out, x).mean()),
                    float(psnr_per_image(noisy_out, x).mean()), float(psnr_per_image(noisy, x).mean()), float(passed))
