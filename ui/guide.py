"""The guided path on Home: a class in seven steps, from the autoencoder to judging a generative model. Each step is
a few plain sentences, one picture made by a shipped model, and a link that opens the right page with the right
settings (its URL), so a lecturer can project it and a student can follow it alone."""
from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st
import torch
import torch.nn.functional as F

from aecore.distill import distill_outputs
from aecore.evaluation import nearest_with_shifts
from aecore.latent import manifold_grid, prior_samples
from aecore.metrics import reconstruct_batched
from aecore.noise import Noise
from ui.state import dataset, shipped_models

DIGITS = [0, 1, 2, 3, 8, 10]  # test images: 6, 3, 0, 8, 7, 5 (varied shapes)


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    page: str
    label: str
    query: dict = field(default_factory=dict)
    picture: str = ""  # key into pictures()
    caption: str = ""


STEPS = [
    Step("The autoencoder: squeeze, then rebuild",
         "An **encoder** squeezes each 28x28 image (784 numbers) into a short **code**; a **decoder** rebuilds the "
         "image from the code alone. Trained to make the rebuilt image match the original, the code must keep "
         "what matters. Top row: test digits the model never saw; bottom row: its reconstructions.",
         "pages/reconstruct.py", "Open Reconstruct with the conv AE",
         {"model": "shipped:conv_ae", "noise": "none", "cmp": "shipped:denoising_ae"}, "ae",
         "Conv AE, 32-number code"),
    Step("Denoising: learn to remove noise",
         "Train the same network on **noisy inputs** but score it against the **clean** images, and it learns to "
         "remove the noise. Top: noisy inputs; bottom: the denoising AE's output. On Reconstruct, compare it with "
         "the same architecture trained on clean images, and turn the noise up.",
         "pages/reconstruct.py", "Open Reconstruct with the denoising AE",
         {"model": "shipped:denoising_ae", "noise": "gaussian:0.5", "cmp": "shipped:conv_ae"}, "denoise",
         "Gaussian noise, σ = 0.5"),
    Step("The VAE: a code that is a cloud, not a point",
         "A **variational** autoencoder encodes each image as a small Gaussian cloud and is pulled to keep all "
         "clouds near a standard Gaussian (the **prior**). Its loss, **-ELBO**, is reconstruction error plus that "
         "pull (the **KL** term). Train the lecture's conv VAE yourself, in under a minute, and watch its loss "
         "fall live.",
         "pages/train.py", "Train the conv VAE now", {"preset": "conv_vae"}, "samples",
         "New digits: random codes through the decoder"),
    Step("The latent space: where every digit lives",
         "With a 2-number code, every image is a point on a plane: similar digits land together, and walking "
         "across the plane morphs one digit into another. Decoding a grid of points draws the whole space at "
         "once. Two numbers cannot hold every stroke, so these digits are blurry by necessity.",
         "pages/latent.py", "Explore the latent space", {"model": "shipped:conv_vae_z2"}, "manifold",
         "The 2-D code space of the conv VAE, decoded on a grid"),
    Step("Transposed convolution: how decoders grow images",
         "Decoders enlarge small maps with **transposed convolutions**: each input pixel stamps a copy of the "
         "kernel onto a bigger output, stride pixels apart. The calculator builds one step by step, with the "
         "lecture's own 6x4 example.",
         "pages/checkerboard.py", "Open the calculator", {"cbin": "lecture_6x4"}, "stamps",
         "Stamps of a 3x3 kernel at stride 2 on a 6x6 input: bright where they overlap"),
    Step("Checkerboards: when the stamps overlap unevenly",
         "When the kernel size is not a multiple of the stride, some output pixels receive more stamps than their "
         "neighbours: a checkerboard. It shows in random decoders before any training, and in trained ones. "
         "Resize-convolution (upsample, then an ordinary convolution) avoids it.",
         "pages/checkerboard.py", "Open the Checkerboard Lab", {"cbtab": "2. Overlaps", "cbsk": "3", "cbss": "2"},
         "checkerboard",
         "A decoder with random weights and two transposed layers: the pattern before any training"),
    Step("Judging a generative model, and how not to",
         "Likelihood is the honest number; Parzen-window scores can rank blurry k-means centroids above real "
         "digits; a digit moved by one pixel is farther, in pixels, than a different digit; and good-looking "
         "samples may be copies or may skip digits. Each point, computed live.",
         "pages/evaluation.py", "Open the Evaluation Lab", {"evtab": "2. Log-likelihood"}, "nearest",
         "Top: samples of the conv VAE (z = 2); bottom: the nearest training digit to each"),
]


@st.cache_resource(show_spinner="Drawing the pictures of the class…")
def pictures() -> dict[str, tuple[torch.Tensor, int]]:
    """One picture per step (images, columns), from shipped models on the bundled test digits; a step whose model
    is missing from checkpoints/ simply has none."""
    models, data = shipped_models(), dataset("mnist-5k")
    if data is None:
        return {}
    x, out = data.test_x[DIGITS], {}
    if (ae := models.get("shipped:conv_ae")) is not None:
        out["ae"] = (torch.cat([x, reconstruct_batched(ae.model, x)[1]]), len(DIGITS))
    if (dae := models.get("shipped:denoising_ae")) is not None:
        noisy, clean = reconstruct_batched(dae.model, x, Noise("gaussian", 0.5), seed=0)
        out["denoise"] = (torch.cat([noisy, clean]), len(DIGITS))
    if (vae := models.get("shipped:conv_vae_z4")) is not None:
        out["samples"] = (prior_samples(vae.model, 12, seed=0), 6)
    if (vae2 := models.get("shipped:conv_vae_z2")) is not None:
        out["manifold"] = (manifold_grid(vae2.model, 8)[0], 8)
        samples = prior_samples(vae2.model, 6, seed=1)
        nearest = data.train_x[nearest_with_shifts(samples, data.train_x).shifted_index]
        out["nearest"] = (torch.cat([samples, nearest]), 6)
    stamps = F.conv_transpose2d(torch.ones(1, 1, 6, 6), torch.ones(1, 1, 3, 3), stride=2)  # counts 1, 2 or 4
    out["stamps"] = (stamps / stamps.max(), 1)
    pattern = distill_outputs("deconv_last_two", n=2, seed=0)
    low, high = pattern.amin((1, 2, 3), keepdim=True), pattern.amax((1, 2, 3), keepdim=True)
    out["checkerboard"] = ((pattern - low) / (high - low).clamp_min(1e-8), 2)  # stretched: raw outputs are ~0.5
    return out
