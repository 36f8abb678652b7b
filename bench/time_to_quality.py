"""Time to quality (issue #10): training seconds until the lecture's conv VAE (z = 2) reaches the tutorial's
20-epoch test -ELBO on the bundled split, with the app's default recipe against the tutorial's, in the same run.

For each seed: the tutorial loop (bench/tutorial.py: per-item PIL/ToTensor DataLoader, batch 100, Adam 1e-3) trains
20 epochs; its test -ELBO after epoch 20 is that seed's target, and its time to the first epoch at or below the
target is the reference. Then aecore's fit() trains the same architecture and seed with the app's default recipe
(or `--recipe`), stopping at the first epoch at or below the target. Both clocks count training steps only (each
epoch's test pass is the measurement, not the training): the tutorial's from its own loop, ours from the training
events (first step of an epoch to its last). Ratio = reference seconds / ours; target >= 3x.

    python bench/time_to_quality.py --seeds 0 1 2
    python bench/time_to_quality.py --seeds 0 --recipe epochs=12,batch_size=32,lr_schedule=cosine
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aecore  # noqa: E402,F401  (first: the thread policy before torch loads)
from bench.machine import finish_report, machine_info  # noqa: E402

TUTORIAL_EPOCHS = 20


def app_recipe() -> dict:
    """The Train page's defaults for the conv VAE (ui/training.py), as TrainConfig arguments."""
    from ui.training import default_recipe

    return default_recipe("conv_vae")


def parse_recipe(text: str) -> dict:
    casts = {"epochs": int, "batch_size": int, "lr": float, "lr_schedule": str}
    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return {k: casts[k](v) for k, v in pairs}


def run_ours(data, seed: int, recipe: dict, target: float) -> dict:
    """fit() with `recipe`; stops at the first epoch whose test -ELBO is at or below target."""
    from aecore.catalog import get_preset
    from aecore.events import EpochEvent
    from aecore.fit import fit
    from aecore.runtime import keep_freed_memory
    from aecore.train import build_seeded

    keep_freed_memory()  # as the app's run worker does
    preset = get_preset("conv_vae")
    cfg = preset.config(seed=seed, **recipe)
    model = build_seeded(preset.spec(data.shape, 2), seed)
    stop = threading.Event()
    curve, times, clock = [], [], {"train_s": 0.0, "epoch_start": time.perf_counter(), "last_step": None}

    def on_event(event):
        now = time.perf_counter()
        if not isinstance(event, EpochEvent):
            clock["last_step"] = now
            return
        clock["train_s"] += clock["last_step"] - clock["epoch_start"]
        curve.append(event.test["loss"])
        times.append(clock["train_s"])
        if event.test["loss"] <= target:
            stop.set()
        clock["epoch_start"] = time.perf_counter()

    fit(model, data.train_x, data.test_x, cfg, stop=stop, on_event=on_event)
    hit = next((i for i, v in enumerate(curve) if v <= target), None)
    return {"recipe": recipe, "curve": curve, "train_s_curve": times, "reached_epoch": None if hit is None else hit + 1,
            "seconds": None if hit is None else times[hit]}


def run_reference(data, seed: int) -> dict:
    from aecore.catalog import get_preset
    from aecore.train import build_seeded
    from bench.tutorial import run_tutorial

    model = build_seeded(get_preset("conv_vae").spec(data.shape, 2), seed)
    res = run_tutorial(model, data.train_x, data.test_x, TUTORIAL_EPOCHS, seed)
    target = res["test_curve"][-1]
    hit = next(i for i, v in enumerate(res["test_curve"]) if v <= target)
    return {"curve": res["test_curve"], "train_s_curve": res["train_s_curve"], "target": target,
            "reached_epoch": hit + 1, "seconds": res["train_s_curve"][hit]}


def markdown(report: dict) -> str:
    m = report["machine"]
    limits = f" (limited by {m['isa_limits']})" if m.get("isa_limits") else ""
    lines = [f"# Time to quality: conv VAE z = 2 to the tutorial's {TUTORIAL_EPOCHS}-epoch test -ELBO",
             "", f"{report['date']}; {m['cpu']} ({m['cpu_flags']}), torch threads {m['torch_threads']}; kernels "
             f"{m.get('cpu_capability', '?')}{limits}; "
             f"recipe {report['recipe']}.", "",
             f"Fast paths on: {', '.join(k for k, v in m['fast_paths'].items() if v is True) or 'none'} "
             f"({m['fast_paths']['reason']}).", "",
             "| seed | target (nats) | tutorial: epoch, s | aecore: epoch, s | ratio |", "|---|---|---|---|---|"]
    for r in report["runs"]:
        ours, ref = r["ours"], r["reference"]
        got = f"{ours['reached_epoch']}, {ours['seconds']:.1f}" if ours["seconds"] is not None else "not reached"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        lines.append(f"| {r['seed']} | {ref['target']:.2f} | {ref['reached_epoch']}, {ref['seconds']:.1f} | {got} | "
                     f"{ratio} |")
    s = report.get("ratio")
    if s:
        lines += ["", f"Ratio median {s['median']:.2f}x (min {s['min']:.2f}, max {s['max']:.2f}); target >= 3x."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--recipe", type=parse_recipe, help="TrainConfig overrides, e.g. epochs=12,batch_size=32")
    p.add_argument("--target", type=float, help="skip the tutorial runs: only time aecore to this -ELBO (exploring)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    import datetime

    from aecore import runtime
    from aecore.data import load_dataset

    threads = runtime.use_threads(runtime.cpu_budget())
    data = load_dataset("mnist-5k")
    recipe = {**app_recipe(), **(args.recipe or {})}
    report = {"date": datetime.date.today().isoformat(), "machine": machine_info(threads), "recipe": recipe, "runs": []}
    for seed in args.seeds:
        if args.target is not None:
            ours = run_ours(data, seed, recipe, args.target)
            print(f"seed {seed}: {recipe} reached {args.target} at epoch {ours['reached_epoch']}, "
                  f"{ours['seconds']} s; curve {[round(v, 1) for v in ours['curve']]}", flush=True)
            continue
        ref = run_reference(data, seed)
        print(f"seed {seed}: tutorial target {ref['target']:.2f} after {ref['seconds']:.1f} s", flush=True)
        ours = run_ours(data, seed, recipe, ref["target"])
        ratio = ref["seconds"] / ours["seconds"] if ours["seconds"] else None
        print(f"seed {seed}: aecore {ours['curve'][-1]:.2f} at epoch {len(ours['curve'])}, "
              f"{ours['seconds'] or float('nan'):.1f} s -> {ratio or float('nan'):.2f}x", flush=True)
        report["runs"].append({"seed": seed, "reference": ref, "ours": ours, "ratio": ratio})
    if args.target is not None:
        return 0
    ratios = [r["ratio"] for r in report["runs"] if r["ratio"]]
    if ratios:
        report["ratio"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    finish_report(args.out, "time_to_quality", report, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
