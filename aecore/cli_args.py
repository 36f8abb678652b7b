"""What the command line accepts: `python -m aecore`'s parser. Every value is checked at parse time, before any
data loads, and a bad one becomes one line naming the option (UsageError), never argparse's usage block.
"""
from __future__ import annotations

import argparse
import math

from .catalog import MODELS
from .data import DATASETS, DEFAULT_DATASET
from .losses import RECON_LOSSES
from .metrics import MAX_IW_SAMPLES
from .noise import Noise
from .train import DEVICES, LR_SCHEDULES, MAX_SEED
from .upsampling import UPSAMPLE_MODES


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see `{self.prog.replace('aecore', 'python -m aecore', 1)} --help`)")


def checked(convert, test=lambda v: True, want: str = ""):
    """An argparse type: a bad value is refused at parse time, with the option's name, before any data loads."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError as e:  # int/float: argparse's usual words; Noise.parse: its own message
            raise argparse.ArgumentTypeError(f"invalid {convert.__name__} value: {text!r}" if convert in (int, float)
                                             else str(e)) from None
        if not test(value):  # nan fails every comparison, so no finite-number test is forgotten
            raise argparse.ArgumentTypeError(want % (text,))  # want: the rule, with %r for what was typed
        return value
    return parse


def known(table: dict, what: str):  # a name from a catalogue of the package: a new model needs no edit here
    return checked(str, table.__contains__, f"unknown {what} %r; choose one of {', '.join(table)}")


COUNT = checked(int, lambda v: v >= 1, "must be at least 1, got %r")  # upper bounds: TrainConfig's, ModelSpec's
SAMPLES = checked(int, lambda v: 0 <= v <= MAX_IW_SAMPLES, f"must be between 0 and {MAX_IW_SAMPLES}, got %r")
SEED = checked(int, lambda v: 0 <= v <= MAX_SEED, f"must be between 0 and {MAX_SEED}, got %r")
POSITIVE = checked(float, lambda v: 0 < v < math.inf, "must be a finite number above 0, got %r")
WEIGHT = checked(float, lambda v: 0 <= v < math.inf, "must be a finite number >= 0, got %r")
FRACTION = checked(float, lambda v: 0 <= v < 1, "must be in [0, 1) (0: no validation split), got %r")
NOISE = checked(lambda text: str(Noise.parse(text)))


def build_parser() -> Parser:
    p = Parser(prog="aecore", description="Train and evaluate autoencoders (Autoencoder Studio's engine).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("list", help="models, datasets and checkpoints")

    t = sub.add_parser("train", help="train a model and write a checkpoint")
    t.add_argument("--model", required=True, type=known(MODELS, "model"), help=", ".join(MODELS))
    t.add_argument("--dataset", default=DEFAULT_DATASET, type=known(DATASETS, "dataset"), help=", ".join(DATASETS))
    t.add_argument("--latent-dim", type=COUNT)
    t.add_argument("--epochs", type=COUNT, default=5)
    t.add_argument("--batch-size", type=COUNT, default=100)
    t.add_argument("--lr", type=POSITIVE, default=1e-3)
    t.add_argument("--lr-schedule", choices=LR_SCHEDULES, help="constant (default) or cosine decay to 0 over the run")
    t.add_argument("--beta", type=WEIGHT, help="KL weight for VAEs (beta-VAE when > 1)")
    t.add_argument("--sparsity", type=WEIGHT, help="L1 weight on the code (sparse AE)")
    t.add_argument("--noise", type=NOISE, help="input corruption: gaussian:SIGMA, salt_pepper:P, masking:P or none")
    t.add_argument("--recon", choices=RECON_LOSSES, help="reconstruction loss")
    t.add_argument("--loss-as-written", action="store_true",
                   help="the first lecture's loss: BCELoss averaged over pixels and batch plus a KL summed over the "
                        "batch (its KL weighs pixels x batch times too much; for comparison with the correct -ELBO)")
    t.add_argument("--upsample", default=UPSAMPLE_MODES[0], choices=UPSAMPLE_MODES)  # the first is ModelSpec's default
    t.add_argument("--seed", type=SEED, default=0)
    t.add_argument("--device", default="auto", choices=DEVICES)
    t.add_argument("--max-steps", type=COUNT, help="stop after this many optimiser steps")
    t.add_argument("--max-train", type=COUNT, help="use at most this many training images")
    t.add_argument("--val-split", type=FRACTION, default=0.0,
                   help="carve this fraction of the training images off as a validation set (e.g. 0.1)")
    t.add_argument("--keep-best", action="store_true",
                   help="keep the weights of the epoch with the lowest validation loss (needs --val-split)")
    t.add_argument("--refit", action="store_true",
                   help="after --keep-best picks the epoch on validation, train afresh on the whole training split "
                        "with the same seed and schedule and stop at that epoch")
    t.add_argument("--half-weights", action="store_true",
                   help="round the trained weights to float16 and store them so (half the file; the metrics are "
                        "measured on the rounded model)")
    t.add_argument("--iw-samples", type=SAMPLES, default=50, help="samples for the IW-NLL estimate (0: skip)")
    t.add_argument("--out", required=True, help="checkpoint path to write (.pt)")
    t.add_argument("--adapt-threads", action="store_true",
                   help="time the steps on every CPU and on one and keep the faster, as the app does: faster beside "
                        "busy programs, but the result then varies in the last float digits from run to run")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="test metrics of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", type=known(DATASETS, "dataset"), help="evaluate on another dataset of the same shape")
    e.add_argument("--iw-samples", type=SAMPLES, default=50)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    return p
