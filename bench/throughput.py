"""Training throughput of aecore's fast path against a tutorial-style DataLoader loop, same model, same run.

    python bench/throughput.py [--epochs N] [--repeats N] [--models a,b] [--threads N]

For each model the two paths train the same architecture, built with the same seed, on the same data
(mnist-5k: 4000 train / 1000 test), batch 100, Adam 1e-3, same loss, same epochs, same thread count:

* fast: `aecore.train.train(model, train_x, test_x, cfg)` exactly as the library runs it (preloaded tensor,
  shuffled index gathers, fused Adam, channels_last for conv models, eval batch from TrainConfig).
* ref:  what tutorials write: the loop in bench/tutorial.py (per-item PIL + ToTensor in a shuffled DataLoader,
  plain Adam, NCHW, test batch 1000).

Runs are interleaved (fast, ref, fast, ref, ...) so machine noise hits both; repeat r uses seed r in both paths,
so the spread of the test loss across repeats is the seed-to-seed noise the two paths are compared against.
Training samples/s counts only the training steps (eval excluded); wall time includes eval.
Writes bench/results/throughput.json and bench/results/throughput.md and prints the table.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aecore  # noqa: E402,F401  (first: the OpenMP wait policy before torch loads)
import torch  # noqa: E402

from aecore.catalog import MODELS  # noqa: E402
from aecore.data import load_dataset  # noqa: E402
from aecore.fit import fit  # noqa: E402
from aecore.train import EpochEvent, StepEvent, build_seeded  # noqa: E402
from bench.machine import loadavg, machine_info, minor_faults, summary, finish_report  # noqa: E402
from bench.tutorial import BATCH, EVAL_BATCH, LR, run_tutorial  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_MODELS = ("linear_ae", "mlp_vae", "conv_vae")
TARGETS = {"linear_ae": 4.0, "mlp_vae": 1.6, "conv_vae": 1.4}  # minimum fast/ref training samples/s
LOSS_RTOL = 0.03  # test losses agree if medians are within 3 % or the per-seed ranges overlap


def run_ref(name: str, data, epochs: int, seed: int) -> dict:
    preset = MODELS[name]
    model = build_seeded(preset.spec(data.shape), seed)
    start, cpu0, faults0 = time.perf_counter(), time.process_time(), minor_faults()
    res = run_tutorial(model, data.train_x, data.test_x, epochs, seed, preset.config().recon)
    wall = time.perf_counter() - start
    return dict(res, wall_s=wall, cpu_per_wall=(time.process_time() - cpu0) / wall,
                page_faults=minor_faults() - faults0)


# ---- the library's fast path ---------------------------------------------------------------------------

def run_fast(name: str, data, epochs: int, seed: int) -> dict:
    from aecore.runtime import keep_freed_memory

    keep_freed_memory()  # as the app's run worker does (aecore/worker.py)
    preset = MODELS[name]
    cfg = preset.config(epochs=epochs, batch_size=BATCH, lr=LR, seed=seed)
    model = build_seeded(preset.spec(data.shape), seed)
    n = len(data.train_x)
    steps_per_epoch = -(-n // BATCH)
    clock = dict(train_s=0.0, n_seen=0)
    start, cpu0, faults0 = time.perf_counter(), time.process_time(), minor_faults()
    clock["epoch_t0"] = clock["last_step"] = start

    def tick(event):  # training-step time only: the time from an epoch's last step to its event is the test pass
        now = time.perf_counter()
        if isinstance(event, StepEvent):
            clock["last_step"] = now
            clock["n_seen"] += min(BATCH, n - (event.step - 1) % steps_per_epoch * BATCH)  # the last batch may be short
        elif isinstance(event, EpochEvent):
            clock["train_s"] += clock["last_step"] - clock["epoch_t0"]
            clock["epoch_t0"] = time.perf_counter()

    history = fit(model, data.train_x, data.test_x, cfg, on_event=tick).history
    wall = time.perf_counter() - start
    train_s, n_seen = clock["train_s"], clock["n_seen"]
    return dict(train_s=train_s, wall_s=wall, samples=n_seen, samples_per_s=n_seen / train_s,
                train_loss=history.train["loss"][-1], test_loss=history.test["loss"][-1],
                test_curve=history.test["loss"], cpu_per_wall=(time.process_time() - cpu0) / wall,
                page_faults=minor_faults() - faults0, eval_batch_size=cfg.eval_batch_size)


# ---- driver --------------------------------------------------------------------------------------------

def bench_model(name: str, data, epochs: int, repeats: int, warmup: bool, log) -> dict:
    if warmup:  # first-call costs (oneDNN primitive caches, allocator) must not land on either path's clock
        run_fast(name, data, 1, 0)
        run_ref(name, data, 1, 0)
    runs = {"fast": [], "ref": []}
    for r in range(repeats):
        for path in ("fast", "ref"):
            res = run_fast(name, data, epochs, r) if path == "fast" else run_ref(name, data, epochs, r)
            runs[path].append(res)
            log(f"  {name:9s} repeat {r + 1}/{repeats} {path:4s}: {res['samples_per_s']:8.0f} samples/s, "
                f"train {res['train_s']:.2f} s, wall {res['wall_s']:.2f} s, test loss {res['test_loss']:.3f}, "
                f"cpu/wall {res['cpu_per_wall']:.2f}")
    keys = ("samples_per_s", "train_s", "wall_s", "test_loss", "cpu_per_wall", "page_faults")
    stats = {p: {k: summary([x[k] for x in runs[p]]) for k in keys} for p in runs}
    f, r = stats["fast"], stats["ref"]
    lf, lr = f["test_loss"], r["test_loss"]
    rel = abs(lf["median"] - lr["median"]) / abs(lr["median"])
    overlap = lf["min"] <= lr["max"] and lr["min"] <= lf["max"]
    ratio = f["samples_per_s"]["median"] / r["samples_per_s"]["median"]
    return {
        "runs": runs, "stats": stats,
        "ratio_samples_per_s": ratio,
        "ratio_wall": r["wall_s"]["median"] / f["wall_s"]["median"],
        # the ratio of the slowest fast run to the fastest ref run: a lower bound that survives the noise
        "ratio_worst_case": f["samples_per_s"]["min"] / r["samples_per_s"]["max"],
        "target": TARGETS.get(name), "meets_target": None if name not in TARGETS else ratio >= TARGETS[name],
        "test_loss_rel_diff": rel, "test_loss_ranges_overlap": overlap,
        "test_loss_agree": rel <= LOSS_RTOL or overlap,
    }


def fmt_spread(s: dict, digits: int = 0) -> str:
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}-{s['max']:,.{digits}f})"


def markdown(report: dict) -> str:
    m, cfg = report["machine"], report["config"]
    lines = [
        f"Training throughput, fast path vs tutorial DataLoader loop: mnist-5k (4000 train / 1000 test), "
        f"batch {cfg['batch_size']}, {cfg['epochs']} epochs, {cfg['repeats']} interleaved repeats (seeds "
        f"0..{cfg['repeats'] - 1}), {m['torch_threads']} threads; {m['cpu']} ({m['cpu_capability']}; "
        f"{m.get('cpu_flags', '?')}{'; emulating ' + str(m['isa_limits']) if m.get('isa_limits') else ''}), "
        f"torch {m['torch']}, {m['date']}. Fast paths: {m.get('fast_paths', {}).get('reason', '?')}.",
        "",
        "| model | fast samples/s | ref samples/s | ratio (target) | wall s fast / ref | test loss fast | "
        "test loss ref | losses agree |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, res in report["models"].items():
        f, r = res["stats"]["fast"], res["stats"]["ref"]
        target = f" (>= {res['target']:g}: {'met' if res['meets_target'] else 'MISSED'})" if res["target"] else ""
        agree = (f"yes ({res['test_loss_rel_diff']:.1%} apart)" if res["test_loss_agree"]
                 else f"NO ({res['test_loss_rel_diff']:.1%} apart)")
        lines.append(
            f"| {name} | {fmt_spread(f['samples_per_s'])} | {fmt_spread(r['samples_per_s'])} | "
            f"**{res['ratio_samples_per_s']:.2f}x**{target} | {f['wall_s']['median']:.2f} / "
            f"{r['wall_s']['median']:.2f} | {fmt_spread(f['test_loss'], 2)} | {fmt_spread(r['test_loss'], 2)} | "
            f"{agree} |")
    lines += [
        "",
        "samples/s: training steps only (eval excluded), median (min-max) over repeats; ratio = median fast / "
        "median ref. Wall time includes the per-epoch test pass (fast: eval batch 100; ref: batch 1000). "
        f"Test loss: nats per image after the last epoch (linear_ae: MSE summed over pixels; VAEs: -ELBO); "
        f"they agree when the medians are within {LOSS_RTOL:.0%} or the across-seed ranges overlap.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated aecore.catalog names")
    p.add_argument("--threads", type=int, default=None, help="torch threads for both paths (default: torch's)")
    p.add_argument("--no-warmup", action="store_true", help="skip the discarded 1-epoch warm-up of each path")
    p.add_argument("--out", default=str(RESULTS), help="folder for throughput.json / throughput.md")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or args.epochs < 1 or args.repeats < 1:
        p.error(f"unknown model(s) {', '.join(unknown)}" if unknown else "epochs and repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    data = load_dataset("mnist-5k")
    log = lambda s: print(s, flush=True)  # noqa: E731
    log(f"torch {torch.__version__}, {threads} threads, {args.epochs} epochs x {args.repeats} repeats")
    report = {
        "machine": machine_info(threads),
        "config": {"dataset": "mnist-5k", "batch_size": BATCH, "lr": LR, "epochs": args.epochs,
                   "repeats": args.repeats, "ref_eval_batch_size": EVAL_BATCH, "warmup": not args.no_warmup,
                   "loss_rtol": LOSS_RTOL, "command": " ".join(["python", *sys.argv])},
        "models": {},
    }
    report["machine"]["loadavg_start"] = loadavg()
    t0 = time.perf_counter()
    for name in names:
        report["models"][name] = bench_model(name, data, args.epochs, args.repeats, not args.no_warmup, log)
    report["bench_seconds"] = time.perf_counter() - t0
    finish_report(args.out, "throughput", report, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
