"""Plain words for every term and metric the app shows: one place, used by tooltips, result tables and the
sidebar's glossary, so a name is explained the same way everywhere (and a non-coder never meets `neg_elbo`)."""
from __future__ import annotations

import re

import streamlit as st

# term -> one or two plain sentences: what it is, which direction is better, what counts as good
TERMS = {
    "Autoencoder (AE)": "A network that squeezes an image into a short code (the encoder) and rebuilds it from the "
                        "code alone (the decoder).",
    "Latent code (z)": "The short list of numbers the encoder makes from an image. z = 2 means two numbers.",
    "VAE": "Variational autoencoder: encodes each image as a small Gaussian cloud of codes and keeps all clouds near "
           "a standard Gaussian, so random codes decode to new images.",
    "Prior": "The distribution a VAE's codes are pulled towards, a standard Gaussian N(0, I); new images come from "
             "decoding random draws from it.",
    "Posterior mean": "The centre of the cloud of codes a VAE gives one image; the Latent page draws these.",
    "MSE": "Mean squared error per pixel between two images (pixels 0 to 1). Lower is closer; 0 is identical.",
    "PSNR": "Peak signal-to-noise ratio, in decibels (dB): higher is closer to the original. Above about 20 dB "
            "looks right for digits; every +3 dB halves the squared error.",
    "SSIM": "Structural similarity: compares local patterns of brightness and contrast, closer to what people see. "
            "1 is identical; above about 0.8 looks right.",
    "nats": "The unit of these losses: information measured with the natural logarithm (1 nat ≈ 1.44 bits). For "
            "likelihood-based numbers, lower means the model finds the images less surprising.",
    "-ELBO": "The VAE's loss, in nats per image: reconstruction error plus the KL term. Lower is better; it is an "
             "upper bound on -log p(x). For the 2-D conv VAE on the bundled digits about 150-170 is good.",
    "KL": "Kullback-Leibler divergence: how far each image's cloud of codes is from the prior, in nats. The price "
          "of using the code; a dimension with KL near 0 is unused.",
    "Active units": "Code dimensions the VAE actually uses (KL above 0.01 nats); the rest carry no information.",
    "β (beta)": "The weight on the KL term. 1 is the plain VAE; a β-VAE (β > 1) trades sharper reconstructions for a "
                "smoother, more disentangled code.",
    "IW-NLL": "Importance-weighted estimate of -log p(x), in nats: tighter than -ELBO, closer to the model's true "
              "likelihood as more codes (k) are sampled. Lower is better.",
    "Probe accuracy": "A straight-line classifier (logistic regression) trained on the codes: how well the code "
                      "separates the digits. Guessing scores 10 % on ten digits.",
    "PCA": "Principal component analysis: the straight directions in which the codes vary most; a flat 2-D view "
           "of many dimensions.",
    "t-SNE": "A 2-D layout that keeps each code near its neighbours. Clusters are meaningful; distances between "
             "clusters and their sizes are not.",
    "Slerp": "Spherical interpolation: walks between two codes along an arc instead of a straight line, staying "
             "at a typical distance from the centre.",
    "Transposed convolution": "The layer decoders use to enlarge an image: each input pixel stamps a copy of the "
                              "kernel onto a larger output. Also called deconvolution.",
    "Resize-convolution": "Enlarge first (nearest or bilinear), then an ordinary convolution: the checkerboard-free "
                          "alternative to a transposed convolution.",
    "Parzen window": "A density made by putting a small Gaussian blob on every sample; it scores a model by how "
                     "close test images are to its samples. Misleading: see the Evaluation Lab.",
    "Epoch": "One pass over all training images.",
    "Batch size": "How many images the model sees before each small update of its weights.",
    "Learning rate": "How big each update of the weights is: too large and training becomes unstable, too small "
                     "and it crawls.",
}

# result keys (aecore.metrics.evaluate_model) -> (plain name, glossary term or None)
METRIC_NAMES = {
    "parameters": ("Trainable weights", None),
    "test_images": ("Test images scored", None),
    "objective_loss": ("Training objective on test images (per image)", None),
    "objective_recon": ("Reconstruction part of the objective", None),
    "objective_kl": ("KL part of the objective (nats)", "KL"),
    "objective_sparsity": ("Sparsity penalty part of the objective", None),
    "mse": ("MSE per pixel (lower is better)", "MSE"),
    "psnr": ("PSNR, dB (higher is better)", "PSNR"),
    "ssim": ("SSIM (1 = identical)", "SSIM"),
    "neg_elbo": ("-ELBO, nats per image (lower is better)", "-ELBO"),
    "recon_nats": ("Reconstruction part of -ELBO, nats", "-ELBO"),
    "kl_nats": ("KL part of -ELBO, nats", "KL"),
    "active_units": ("Active code dimensions", "Active units"),
    "noisy_input_psnr": ("PSNR of the noisy input itself, dB", "PSNR"),
    "denoised_psnr": ("PSNR after denoising, dB (higher is better)", "PSNR"),
    "denoised_ssim": ("SSIM after denoising", "SSIM"),
    "probe_accuracy": ("Probe accuracy (chance 10 %)", "Probe accuracy"),
}


NOISE_LABELS = {"none": "No noise", "gaussian": "Gaussian (grain)", "salt_pepper": "Salt and pepper",
                "masking": "Masking"}
NOISE_EXPLAINED = ("Gaussian: grainy noise on every pixel (level = its strength σ). Salt and pepper: random pixels "
                   "turned black or white (level = their share). Masking: random pixels blacked out (level = their "
                   "share).")
UPSAMPLE_LABELS = {"transposed": "Transposed 3x3 (lecture)", "transposed4": "Transposed 4x4",
                   "nearest": "Nearest resize + conv", "bilinear": "Bilinear resize + conv",
                   "subpixel": "Sub-pixel (PixelShuffle)"}

# Reconstruct's summary metrics -> the term that explains them
SUMMARY_TERMS = {"MSE (per pixel)": "MSE", "PSNR": "PSNR", "SSIM": "SSIM", "noisy input PSNR": "PSNR"}


def explain(term: str) -> str:
    """The plain explanation of a glossary term (a tooltip's text)."""
    return TERMS[term]


def metric_rows(metrics: dict) -> list[dict]:
    """Result metrics as rows a person can read: plain name, value, what it means."""
    rows = []
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        iw = re.fullmatch(r"iw_nll_k(\d+)", key)
        name, term = (f"IW-NLL with k = {iw.group(1)}, nats (lower is better)", "IW-NLL") if iw else \
            METRIC_NAMES.get(key, (key.replace("_", " "), None))
        shown = f"{value:.1%}" if key == "probe_accuracy" else f"{value:,}" if isinstance(value, int) else \
            f"{value:.4g}"
        rows.append({"metric": name, "value": shown, "what it means": TERMS.get(term, "") if term else ""})
    return rows


def glossary_expander(where=st.sidebar) -> None:
    with where.expander("Glossary", icon=":material/menu_book:"):
        st.markdown("\n".join(f"**{term}**: {text}  " for term, text in TERMS.items()))
