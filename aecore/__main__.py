"""Command line: `python -m aecore list | train | eval`. The headless path, e.g. on a GPU server.

Bad arguments and bad files exit with status 2 and one clear line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see `{self.prog.replace('aecore', 'python -m aecore', 1)} --help`)")


def build_parser() -> Parser:
    p = Parser(prog="aecore", description="Train and evaluate autoencoders (Autoencoder Studio's engine).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("list", help="models, datasets and checkpoints")

    t = sub.add_parser("train", help="train a model and write a checkpoint")
    t.add_argument("--model", required=True, help="linear_ae, conv_ae, mlp_vae, conv_vae, ... (see `list`)")
    t.add_argument("--dataset", default="mnist-5k")
    t.add_argument("--latent-dim", type=int)
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--batch-size", type=int, default=100)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--lr-schedule", choices=["constant", "cosine"],
                   help="constant (default) or cosine decay to 0 over the run")
    t.add_argument("--beta", type=float, help="KL weight for VAEs (beta-VAE when > 1)")
    t.add_argument("--sparsity", type=float, help="L1 weight on the code (sparse AE)")
    t.add_argument("--noise", help="input corruption: gaussian:SIGMA, salt_pepper:P, masking:P or none")
    t.add_argument("--recon", choices=["bce", "mse", "l1"], help="reconstruction loss")
    t.add_argument("--upsample", default="transposed",
                   choices=["transposed", "transposed4", "nearest", "bilinear", "subpixel"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    t.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    t.add_argument("--max-train", type=int, help="use at most this many training images")
    t.add_argument("--val-split", type=float, default=0.0,
                   help="carve this fraction of the training images off as a validation set (e.g. 0.1)")
    t.add_argument("--keep-best", action="store_true",
                   help="keep the weights of the epoch with the lowest validation loss (needs --val-split)")
    t.add_argument("--refit", action="store_true",
                   help="after --keep-best picks the epoch on validation, train afresh on the whole training split "
                        "with the same seed and schedule and stop at that epoch")
    t.add_argument("--iw-samples", type=int, default=50, help="samples for the IW-NLL estimate (0: skip)")
    t.add_argument("--out", required=True, help="checkpoint path to write (.pt)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="test metrics of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", help="evaluate on another dataset of the same image shape")
    e.add_argument("--iw-samples", type=int, default=50)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def cmd_list(args) -> int:
    from .catalog import MODELS
    from .checkpoints import CheckpointError, list_checkpoints, load_checkpoint
    from .data import DATASETS, dataset_status

    print("Models:")
    for p in MODELS.values():
        print(f"  {p.name:<13} {p.title:<13} {p.description}")
    print("Datasets:")
    for d in DATASETS.values():
        shape = "x".join(map(str, d.shape))
        print(f"  {d.name:<13} {shape:<8} {dataset_status(d.name):<15} {d.title}")
    print(f"Checkpoints ({CHECKPOINT_DIR}):")
    found = list_checkpoints(CHECKPOINT_DIR)
    for path in found:
        try:
            c = load_checkpoint(path)
            print(f"  {path.name:<32} {c.model_name} on {c.dataset}, z={c.spec.latent_dim}")
        except CheckpointError as err:
            print(f"  {path.name:<32} unreadable: {err}")
    if not found:
        print("  (none yet: train one with `python -m aecore train ... --out checkpoints/NAME.pt`)")
    return 0


def cmd_train(args) -> int:
    from .catalog import get_preset
    from .checkpoints import Checkpoint, save_checkpoint
    from .data import carve_validation, load_dataset
    from .metrics import evaluate_model

    preset = get_preset(args.model)
    cfg = preset.config(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
                        beta=args.beta, sparsity=args.sparsity, noise=args.noise, recon=args.recon, seed=args.seed,
                        device=args.device, max_steps=args.max_steps)
    out = Path(args.out)
    if out.suffix != ".pt":
        raise UsageError(f"--out must end in .pt, got {out}")
    if args.keep_best and not args.val_split:
        raise UsageError("--keep-best needs a validation split, e.g. --val-split 0.1")
    if args.refit and not args.keep_best:
        raise UsageError("--refit needs --keep-best (and --val-split) to choose the epoch count")
    from . import distributed

    distributed.init(args.device)  # under torchrun: join the group (nothing otherwise)
    data = load_dataset(args.dataset, max_train=args.max_train)
    fit_data, val_x = data, None
    if args.val_split:
        fit_data, val_x = carve_validation(data, args.val_split)  # one fixed split: runs with other seeds compare on it
    spec = preset.spec(data.shape, args.latent_dim, args.upsample)
    extra = {"command": "python -m aecore " + " ".join(map(shlex.quote, sys.argv[1:]))}
    # the epoch count is chosen on validation; a refit then lets the model see every training image
    result = _fit(spec, cfg, fit_data, val_x, args, refit_x=data.train_x if args.refit else None)
    model, history = result.model, result.history
    extra["train_seconds"] = round(result.seconds, 2)
    if val_x is not None:
        extra["validation_images"] = len(val_x)
    if args.keep_best:
        extra["selected_epoch"] = result.selected_epoch  # chosen on validation loss, never on test
    if result.selection is not None:
        extra["selection"] = {"val_loss": result.selection.val.get("loss", []),
                              "train_seconds": round(result.selection.seconds, 2)}
        extra["refit_images"] = len(data.train_x)
    if distributed.world_size() > 1:
        extra["processes"] = distributed.world_size()
        if not distributed.is_main():  # rank 0 evaluates and writes; the others are done
            distributed.shutdown()
            return 0
    ckpt = Checkpoint(model, preset.name, args.dataset, cfg, history=history, extra=extra)
    # the same evaluation as `eval`: the probe on the codes learns from the whole training split
    ckpt.metrics = evaluate_model(model.cpu(), data, cfg, iw_samples=args.iw_samples)
    save_checkpoint(ckpt, out)
    _print_metrics(ckpt.metrics)
    print(f"wrote {out}")
    distributed.shutdown()
    return 0


def _fit(spec, cfg, data, val_x, args, refit_x=None):
    """fit() from a freshly seeded model, with a progress bar on the terminal (rank 0 only under torchrun)."""
    from .distributed import is_main
    from .fit import fit
    from .train import EpochEvent, build_seeded

    steps = -(-len(data.train_x) // cfg.batch_size) * cfg.epochs
    bar = None if args.quiet or not is_main() else _progress_bar(cfg, steps)

    def show(event):
        if bar is not None:
            bar.update(1) if not isinstance(event, EpochEvent) else bar.set_postfix(
                epoch=event.epoch, test_loss=f"{event.test.get('loss', float('nan')):.2f}")
    try:
        return fit(build_seeded(spec, cfg.seed), data.train_x, data.test_x, cfg, val_x=val_x,
                   keep_best=args.keep_best, refit_x=refit_x, on_event=show)
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(cfg, total):
    from tqdm import tqdm

    return tqdm(total=min(total, cfg.max_steps or total), unit="step", file=sys.stderr, dynamic_ncols=True)


def cmd_eval(args) -> int:
    from .checkpoints import load_checkpoint
    from .data import load_dataset
    from .metrics import evaluate_model

    ckpt = load_checkpoint(args.checkpoint)
    data = load_dataset(args.dataset or ckpt.dataset)
    if data.shape != ckpt.spec.input_shape:
        raise UsageError(f"{data.name} images are {data.shape}, the model expects {ckpt.spec.input_shape}")
    metrics = evaluate_model(ckpt.model, data, ckpt.config, iw_samples=args.iw_samples)
    report = {"checkpoint": str(args.checkpoint), "model": ckpt.model_name, "dataset": data.name,
              "spec": ckpt.spec.to_dict(), "config": ckpt.config.to_dict(), "metrics": metrics}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{ckpt.model_name} on {data.name}: {metrics['parameters']:,} parameters, spec {ckpt.spec.to_json()}")
        _print_metrics(metrics)
    return 0


def _print_metrics(metrics: dict) -> None:
    for k, v in metrics.items():
        if isinstance(v, float):
            print(f"  {k:<22} {v:.4f}")
        elif not isinstance(v, list):
            print(f"  {k:<22} {v}")


def main(argv=None) -> int:
    from .checkpoints import CheckpointError
    from .data import DatasetError
    from .train import TrainingError

    try:
        args = build_parser().parse_args(argv)
        if args.command in ("train", "eval"):
            from .runtime import cpu_budget, use_threads

            use_threads(cpu_budget())  # the CPUs this process may really use (affinity, cgroup quota)
        return {"list": cmd_list, "train": cmd_train, "eval": cmd_eval}[args.command](args)
    except (UsageError, CheckpointError, DatasetError, TrainingError, ValueError) as e:
        print(f"aecore: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aecore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
