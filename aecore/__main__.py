"""Command line: `python -m aecore list | train | eval`. The headless path, e.g. on a GPU server.

Exit status 2: bad input (arguments, files, device), one clear line on stderr, never a traceback, found before training
where it can be. 1: the run trained but ended badly (NaN loss, --out unwritable): the line says where the weights are.
"""
from __future__ import annotations

import errno
import json
import math
import os
import shlex
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from . import checkpoints, distributed  # the module: save_checkpoint is looked up when called (tests make it fail)
from .cli_args import UsageError, build_parser
from .catalog import MODELS, get_preset
from .data import DATASETS, DatasetError, carve_validation, dataset_status, load_dataset
from .events import EpochEvent, History, StepEvent
from .fit import FitResult, fit
from .imageio import ImageError
from .metrics import evaluate_model
from .models import SpecError
from .runtime import ThreadTuner, cpu_budget, keep_freed_memory, use_threads
from .train import TrainingError, build_seeded, pick_device

CHECKPOINT_DIR = Path(os.environ.get("AECORE_CHECKPOINTS", "checkpoints"))  # the working folder's, like --out


def cmd_list(args) -> int:
    print("Models:")
    for p in MODELS.values():
        print(f"  {p.name:<13} {p.title:<13} {p.description}")
    print("Datasets:")
    for d in DATASETS.values():
        print(f"  {d.name:<13} {'x'.join(map(str, d.shape)):<8} {dataset_status(d.name):<15} {d.title}")
    print(f"Checkpoints ({CHECKPOINT_DIR}):")
    found = checkpoints.list_checkpoints(CHECKPOINT_DIR)
    for path in found:
        try:
            c = checkpoints.load_checkpoint(path)
            print(f"  {path.name:<32} {c.model_name} on {c.dataset}, z={c.spec.latent_dim}")
        except checkpoints.CheckpointError as err:
            print(f"  {path.name:<32} unreadable: {err}")
    if not found:
        print("  (none yet: train one with `python -m aecore train ... --out checkpoints/NAME.pt`)")
    return 0


def cmd_train(args) -> int:
    preset = get_preset(args.model)
    try:
        cfg = preset.config(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
                            beta=args.beta, sparsity=args.sparsity, noise=args.noise, recon=args.recon,
                            seed=args.seed, device=args.device, max_steps=args.max_steps,
                            reduction="as_written" if args.loss_as_written else None)
    except ValueError as e:  # TrainConfig's checks (plain ValueError): here they are about the user's arguments
        raise UsageError(str(e)) from None
    if args.keep_best and not args.val_split:
        raise UsageError("--keep-best needs a validation split, e.g. --val-split 0.1")
    if args.refit and not args.keep_best:
        raise UsageError("--refit needs --keep-best (and --val-split) to choose the epoch count")
    # everything that can be checked without data is checked before the data loads and long before training ends
    spec = preset.spec(DATASETS[args.dataset].shape, args.latent_dim, args.upsample)
    pick_device(cfg.device)  # a device that is not here: TrainingError now, not after loading the data
    check_out(out := Path(args.out))

    distributed.init(args.device)  # under torchrun: join the group (nothing otherwise)
    keep_freed_memory()  # this process exists to train: the process-wide allocator tweak is safe (runtime.py)
    data = load_dataset(args.dataset, max_train=args.max_train)
    # one fixed validation split: runs with other seeds compare on it
    fit_data, val_x = carve_validation(data, args.val_split) if args.val_split else (data, None)
    # the epoch count is chosen on validation; a refit then lets the model see every training image
    thread_steps = {} if args.adapt_threads else None  # thread count -> optimiser steps run on it
    result, failure = _fit(spec, cfg, fit_data, val_x, args, thread_steps, refit_x=data.train_x if args.refit else None)
    extra = {"command": "python -m aecore " + " ".join(map(shlex.quote, args.argv)),
             "train_seconds": round(result.seconds, 2)}
    if thread_steps is not None:  # which thread counts the steps ran on: such a run's floats vary between runs
        extra["thread_steps"] = {str(n): k for n, k in sorted(thread_steps.items())}
    if failure:
        extra["stopped"] = failure  # the checkpoint says it holds the last good weights of a run that diverged
    if val_x is not None:
        extra["validation_images"] = len(val_x)
    if args.keep_best and result.selected_epoch is not None:
        extra["selected_epoch"] = result.selected_epoch  # chosen on validation loss, never on test
    if result.selection is not None:
        extra["selection"] = {"val_loss": result.selection.val.get("loss", []),
                              "train_seconds": round(result.selection.seconds, 2)}
        extra["refit_images"] = len(data.train_x)
    if args.half_weights:  # before the evaluation: the metrics describe the model as stored
        checkpoints.round_weights(result.model, "float16")
        extra["weights_dtype"] = "float16"
    if distributed.world_size() > 1:
        extra["processes"] = distributed.world_size()
        if not distributed.is_main():  # rank 0 evaluates and writes; the others are done
            distributed.shutdown()
            return 1 if failure else 0
    ckpt = checkpoints.Checkpoint(result.model, preset.name, args.dataset, cfg, history=result.history, extra=extra,
                                  timelapse=result.timelapse)
    try:  # the same evaluation as `eval`: the probe on the codes learns from the whole training split
        ckpt.metrics = _evaluate(result.model.cpu(), data, cfg, args)
    except BaseException:  # a failing evaluation (a bug, Ctrl-C) must not cost the trained weights
        if save(ckpt, out) == 0:
            print(f"aecore: wrote {out} without metrics: the evaluation did not finish", file=sys.stderr)
        raise
    status = save(ckpt, out)
    _print_metrics(ckpt.metrics)
    distributed.shutdown()
    if status == 0:  # a NaN run's checkpoint is written too, but the run did not succeed: stderr and status 1
        print(f"aecore: error: {failure} Wrote {out} with those weights." if failure else f"wrote {out}",
              file=sys.stderr if failure else sys.stdout)
    return status or (1 if failure else 0)


def check_out(out: Path) -> None:
    """Before training, not after: refuse a folder, a path under a file, a name too long for the file system, a folder
    we may not write. The folder is created if missing and probed with a temp file named as save_checkpoint does."""
    try:  # is_dir first: a folder named x.pt is still a folder; is_dir itself fails on a name that is too long
        if out.is_dir():
            raise UsageError(f"--out {out} is a folder; give a file name in it, e.g. {out / 'model.pt'}")
        if out.suffix != ".pt":
            raise UsageError(f"--out must end in .pt, got {out}")
        out.parent.mkdir(parents=True, exist_ok=True)
        # save_checkpoint first writes ".NAME.XXXXXXXX.tmp": the name must leave room for those 14 bytes
        limit, size = os.pathconf(out.parent, "PC_NAME_MAX") - 14, len(os.fsencode(out.name))
        if size > limit:
            raise UsageError(f"--out file name is {size} bytes long; this file system allows at most {limit} here")
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        blocker = next((p for p in reversed(out.parents) if p.exists() and not p.is_dir()), None)
        why = (f"{blocker} is a file, not a folder" if blocker is not None else
               f"{out.parent} is not writable ({e.strerror})" if isinstance(e, PermissionError) else
               f"a name in it is longer than this file system allows ({e.strerror})" if e.errno == errno.ENAMETOOLONG
               else e.strerror or str(e))
        raise UsageError(f"cannot write --out {out}: {why}") from None


def save(ckpt, out: Path) -> int:
    """Write the checkpoint; if that fails now (disk full, folder removed during training), keep it in the temp
    folder instead and say where. Returns the exit status: 0 written where asked, 1 otherwise."""
    try:
        checkpoints.save_checkpoint(ckpt, out)
        return 0
    except OSError as e:
        rescue = Path(tempfile.gettempdir()) / f"aecore-rescued-{datetime.now():%Y%m%d-%H%M%S-%f}.pt"
        try:
            checkpoints.save_checkpoint(ckpt, rescue)
            kept = f"the trained model was kept in {rescue}"
        except OSError as again:
            kept = f"nor in {rescue} ({again.strerror or again}): the trained model is lost"
        print(f"aecore: error: could not write {out} ({e.strerror or e}); {kept}", file=sys.stderr)
        return 1


def _fit(spec, cfg, data, val_x, args, thread_steps=None, refit_x=None):
    """fit() from a freshly seeded model, with a progress bar (rank 0 only under torchrun): (FitResult, None); or, if
    training stopped after a whole epoch (NaN loss), (FitResult with the last good weights fit() left, the reason)."""
    steps = min(-(-len(data.train_x) // cfg.batch_size) * cfg.epochs, cfg.max_steps or math.inf)
    bar = None if args.quiet or not distributed.is_main() else tqdm(total=steps, unit="step", file=sys.stderr,
                                                                    dynamic_ncols=True)
    model, seen = build_seeded(spec, cfg.seed), [History()]
    budget, tuner = cpu_budget(), ThreadTuner() if thread_steps is not None else None

    def show(event):
        if isinstance(event, StepEvent) and event.step == 1:
            seen[0] = History()  # a refit is a new run: keep only its history
        if tuner is not None and isinstance(event, StepEvent):  # as the app's workers do (runtime.ThreadTuner)
            ran_on = tuner.current or budget  # the count the tuner chose for the step just done (none yet: budget)
            thread_steps[ran_on] = thread_steps.get(ran_on, 0) + 1
            use_threads(tuner.after_step(time.perf_counter(), budget))
        seen[0].record(event)
        if bar is not None:
            bar.update(1) if not isinstance(event, EpochEvent) else bar.set_postfix(
                epoch=event.epoch, test_loss=f"{event.test.get('loss', float('nan')):.2f}")
    try:
        return fit(model, data.train_x, data.test_x, cfg, val_x=val_x, keep_best=args.keep_best,
                   refit_x=refit_x, on_event=show, timelapse=True), None
    except TrainingError as e:
        if not seen[0].epoch:  # no epoch finished: nothing trained worth keeping, a plain error
            raise TrainingError(f"{e} Nothing was written: no epoch finished.") from None
        return FitResult(model, seen[0], stopped=True), str(e)
    finally:
        use_threads(budget)  # the evaluation after it on the usual count, so `eval` of these weights agrees
        if bar is not None:
            bar.close()


def cmd_eval(args) -> int:
    keep_freed_memory()  # this process exists to evaluate: IW-NLL's decodes reuse their blocks (runtime.py)
    ckpt = checkpoints.load_checkpoint(args.checkpoint)
    data = load_dataset(args.dataset or ckpt.dataset)
    if data.shape != ckpt.spec.input_shape:
        raise UsageError(f"{data.name} images are {data.shape}, the model expects {ckpt.spec.input_shape}")
    if args.json:  # one object, at the end
        metrics = _evaluate(ckpt.model, data, ckpt.config, args)
        print(json.dumps({"checkpoint": str(args.checkpoint), "model": ckpt.model_name, "dataset": data.name,
                          "spec": ckpt.spec.to_dict(), "config": ckpt.config.to_dict(), "metrics": metrics}))
        return 0
    shown = set()  # every metric as soon as it is known: a VAE's IW-NLL comes 14-17 s after the rest

    def show(metrics):
        if not shown:
            print(f"{ckpt.model_name} on {data.name}: {metrics['parameters']:,} parameters, spec "
                  f"{ckpt.spec.to_json()}")
        _print_metrics({k: v for k, v in metrics.items() if k not in shown})
        shown.update(metrics)
        sys.stdout.flush()
    show(_evaluate(ckpt.model, data, ckpt.config, args, on_ready=show))
    return 0


def _evaluate(model, data, cfg, args, on_ready=None) -> dict:
    """evaluate_model with a progress bar on stderr for the IW-NLL, most of a VAE's evaluation (14-17 s of the
    resize and sub-pixel VAEs' 19-26 s on 2 cores, minutes on a loaded machine): without one the command looks hung.
    `on_ready(metrics)` gets the other metrics first; the bar starts after it, below what it printed."""
    bar = []

    def ready(metrics):
        if on_ready is not None:
            on_ready(metrics)
        if not args.quiet and distributed.is_main():
            bar.append(tqdm(total=len(data.test_x), unit="image", desc=f"IW-NLL, k = {args.iw_samples}",
                            file=sys.stderr, dynamic_ncols=True, leave=False))
    try:
        return evaluate_model(model, data, cfg, iw_samples=args.iw_samples, on_ready=ready,
                              progress=lambda done, total: bar and bar[0].update(done - bar[0].n))
    finally:
        if bar:
            bar[0].close()


def _print_metrics(metrics: dict) -> None:
    for k, v in metrics.items():
        if not isinstance(v, list):
            print(f"  {k:<22} {v:.4f}" if isinstance(v, float) else f"  {k:<22} {v}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv  # the checkpoint records the command, also when main() is called in-process
        if args.command in ("train", "eval"):
            use_threads(cpu_budget())  # the CPUs this process may really use (affinity, cgroup quota)
        return {"list": cmd_list, "train": cmd_train, "eval": cmd_eval}[args.command](args)
    # only the package's user-facing errors and file-system errors: any other exception is a bug and keeps its trace
    except (UsageError, checkpoints.CheckpointError, SpecError, DatasetError, TrainingError, ImageError, OSError) as e:
        print(f"aecore: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aecore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
