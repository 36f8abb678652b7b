"""Decoders that differ only in how they upsample: Distill's three random-init decoder stacks, and trained
checkpoints grouped by everything but their decoder upsampling.

Follows Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill 2016). Split out of
aecore.checkerboard (which still re-exports these names). No Streamlit here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Distill's three decoders: transposed conv in the last two layers / only the last / nowhere.
DISTILL_CONFIGS = ("deconv_last_two", "deconv_last", "resize_all")


# ------------------------------------------------------------ Distill decoders
def _upsample_layer(c_in, c_out, transposed):
    """Doubles H and W: transposed conv k3 s2 (p1, op1) or nearest x2 + conv k3 p1."""
    if transposed:
        return nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1))


def distill_decoder(config: str, latent_dim=64, channels=None, out_size=64, seed=None,
                    final="sigmoid") -> nn.Module:
    """Random-init decoder: Linear -> (C0, 4, 4) -> log2(out_size/4) doubling layers -> (1, out, out).

    channels: input channels of each doubling layer (default 64, 32, 16, 8 ... halving, min 4);
    the last layer outputs 1 channel. ReLU between layers; final "sigmoid" or "none".
    `config` only chooses which doubling layers are transposed convs (see DISTILL_CONFIGS).
    """
    if config not in DISTILL_CONFIGS or final not in ("sigmoid", "none", None):
        raise ValueError(f"config must be one of {DISTILL_CONFIGS} and final 'sigmoid' or 'none', "
                         f"got {config!r}, {final!r}")
    n_up = max(int(out_size) // 4, 1).bit_length() - 1  # number of doublings from 4x4
    if n_up < 1 or 4 << n_up != out_size:
        raise ValueError(f"out_size must be 4 * 2**n with n >= 1, got {out_size}")
    channels = list(channels) if channels is not None else [max(64 >> i, 4) for i in range(n_up)]
    if len(channels) != n_up:
        raise ValueError(f"need {n_up} channel counts for out_size={out_size}, got {len(channels)}")
    n_deconv = {"deconv_last_two": 2, "deconv_last": 1, "resize_all": 0}[config]
    chans = channels + [1]
    with torch.random.fork_rng(devices=[]):  # seeding must not disturb the caller's RNG
        if seed is not None:
            torch.manual_seed(seed)
        mods = [nn.Linear(latent_dim, chans[0] * 16), nn.Unflatten(1, (chans[0], 4, 4)), nn.ReLU()]
        for i in range(n_up):
            mods.append(_upsample_layer(chans[i], chans[i + 1], transposed=i >= n_up - n_deconv))
            mods.append(nn.ReLU() if i < n_up - 1 else nn.Sigmoid() if final == "sigmoid" else nn.Identity())
    return nn.Sequential(*mods).eval()


def distill_outputs(config, n=4, seed=0, latent="random", size=64) -> torch.Tensor:
    """Decode n latents (N(0,1) "random" or all-ones "constant") with a seeded random-init decoder.

    Returns a float tensor (n, 1, size, size) in [0, 1] (sigmoid output).
    """
    dec = distill_decoder(config, out_size=size, seed=seed)
    if latent not in ("random", "constant"):
        raise ValueError(f"latent must be 'random' or 'constant', got {latent!r}")
    z = torch.ones(n, dec[0].in_features)  # a constant latent still gives a structured image
    if latent == "random":
        z = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return dec(z)


# ------------------------------------------------- trained decoders that differ only in upsampling
# Training settings that must match for two checkpoints to be compared (device and eval batch do not matter).
RECIPE_CONFIG_FIELDS = ("epochs", "batch_size", "lr", "lr_schedule", "beta", "sparsity", "noise", "recon", "seed",
                        "max_steps")


def comparison_recipe(ckpt) -> tuple | None:
    """What a checkpoint shares with its siblings that differ only in decoder upsampling: model name, dataset,
    the spec without `upsample`, and the training settings. None for non-convolutional models."""
    return recipe_of(ckpt.model_name, ckpt.dataset, ckpt.spec, ckpt.config)


def recipe_of(model_name: str, dataset: str, spec, config) -> tuple | None:
    """comparison_recipe from its parts (a ModelSpec and a TrainConfig), e.g. for a set not trained yet."""
    if not spec.is_conv:
        return None
    spec_part = tuple((k, v) for k, v in sorted(spec.to_dict().items()) if k != "upsample")
    cfg = config.to_dict()
    return (model_name, dataset, spec_part, tuple((k, cfg.get(k)) for k in RECIPE_CONFIG_FIELDS))


@dataclass
class UpsampleGroup:
    recipe: tuple
    members: dict  # upsample mode -> key of the first checkpoint with it (in the order given)

    @property
    def model_name(self) -> str:
        return self.recipe[0]

    @property
    def dataset(self) -> str:
        return self.recipe[1]

    @property
    def spec(self) -> dict:
        return dict(self.recipe[2])

    @property
    def config(self) -> dict:
        return dict(self.recipe[3])

    def missing(self, modes) -> list[str]:
        return [m for m in modes if m not in self.members]


def group_by_upsampling(checkpoints) -> list[UpsampleGroup]:
    """Group (key, Checkpoint) pairs whose models differ only in decoder upsampling.

    Returns groups with the most upsampling modes first (ties keep first-seen order); within a group the
    first checkpoint seen for each mode wins.
    """
    groups: dict[tuple, UpsampleGroup] = {}
    for key, ckpt in checkpoints:
        recipe = comparison_recipe(ckpt)
        if recipe is None:
            continue
        group = groups.setdefault(recipe, UpsampleGroup(recipe, {}))
        group.members.setdefault(ckpt.spec.upsample, key)
    return sorted(groups.values(), key=lambda g: -len(g.members))
