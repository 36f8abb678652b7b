"""How good the shipped models are, beside tutorial reference runs of the same models trained in the same run.

    python bench/quality.py [--only conv_vae_z2,mlp_vae_z2] [--ref-epochs 50] [--no-refs] [--iw-samples 200]

For every checkpoint in checkpoints/, on its dataset's test split (a fresh evaluation, not the stored metrics):
-ELBO with its recon and KL parts and the IW-NLL for VAEs, MSE/PSNR/SSIM of the reconstructions, the latent
probe accuracy, PSNR of the output for Gaussian-noised inputs at sigma 0.1/0.3/0.5 beside the noisy input's
PSNR, and the checkerboard artifact score of the reconstructions (aecore.artifacts, period 2).

For every shipped VAE, the tutorial reference (bench/tutorial.py: per-item PIL + ToTensor DataLoader, batch 100,
plain Adam 1e-3, the whole training split, no validation) trains the same architecture with the same beta for
--ref-epochs epochs (at least the shipped model's own epochs), and the table gives the reference's best test
-ELBO over those epochs (chosen on test: the strongest bar), its value at the shipped model's epoch count, and
the margin by which the shipped model (chosen on a validation split) beats the best.

Speed: the conv VAE training step's achieved FLOP/s (FLOPs of the plain model counted by
torch.utils.flop_counter, time of aecore's fast path) as a fraction of the machine's measured sgemm and
channels_last conv throughput, measured in the same run.
Writes bench/results/quality.json and quality.md and prints the tables.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from aecore.artifacts import artifact_score  # noqa: E402
from aecore.catalog import MODELS  # noqa: E402
from aecore.checkpoints import list_checkpoints, load_checkpoint  # noqa: E402
from aecore.data import load_dataset  # noqa: E402
from aecore.metrics import evaluate_model, psnr_per_image, reconstruct_batched  # noqa: E402
from aecore.noise import Noise  # noqa: E402
from aecore.fit import fit  # noqa: E402
from aecore.train import StepEvent, build_seeded, loss_parts  # noqa: E402
from bench.machine import loadavg, machine_info, finish_report  # noqa: E402
from bench.tutorial import run_tutorial  # noqa: E402

SIGMAS = (0.1, 0.3, 0.5)
BAR_EPOCHS = 50  # each shipped VAE must match the best test epoch the tutorial reference reaches within 50 epochs


# ---- the shipped models ----------------------------------------------------------------------------------

def evaluate_checkpoint(name: str, ckpt, data, iw_samples: int) -> dict:
    model = ckpt.model.eval()
    m = evaluate_model(model, data, ckpt.config, iw_samples=iw_samples)
    for sigma in SIGMAS:
        noisy, out = reconstruct_batched(model, data.test_x, Noise("gaussian", sigma), seed=1)
        m[f"psnr_noisy_{sigma}"] = psnr_per_image(noisy, data.test_x).mean().item()
        m[f"psnr_out_{sigma}"] = psnr_per_image(out, data.test_x).mean().item()
    _, recon = reconstruct_batched(model, data.test_x)
    m["artifact_score"] = artifact_score(recon.numpy(), periods=(2,))
    return {"name": name, "measured": machine_info(torch.get_num_threads())["date"],
            "model": ckpt.model_name, "dataset": ckpt.dataset, "spec": ckpt.spec.to_dict(),
            "config": ckpt.config.to_dict(), "epochs": ckpt.config.epochs,
            "selected_epoch": ckpt.extra.get("selected_epoch"), "command": ckpt.extra.get("command"),
            "train_seconds": ckpt.extra.get("train_seconds"), "metrics": m}


def reference_run(row: dict, ckpt, data, epochs: int, log) -> dict:
    """The tutorial loop on the same architecture, beta and data; its test objective after every epoch."""
    epochs = max(epochs, row["epochs"])
    t0 = time.perf_counter()

    def progress(epoch, value):
        if epoch % 10 == 0 or epoch == epochs:
            log(f"    reference for {row['name']}: epoch {epoch}/{epochs}, test {value:.2f}")

    res = run_tutorial(build_seeded(ckpt.spec, 0), data.train_x, data.test_x, epochs, 0, "bce",
                       ckpt.config.beta, on_epoch=progress)
    curve = res["test_curve"]
    best = min(range(min(BAR_EPOCHS, len(curve))), key=curve.__getitem__)  # the bar: the best test epoch within 50
    return {"epochs": epochs, "curve": curve, "best": curve[best], "best_epoch": best + 1, "best_overall": min(curve),
            "at_shipped_epochs": curve[row["epochs"] - 1], "seconds": time.perf_counter() - t0}


# ---- speed: achieved FLOP/s of the conv VAE step against the machine's measured peak ----------------------

def best_rate(fn, flops: float, repeats: int = 5, inner: int = 3) -> float:
    """FLOP/s of fn: the best of `repeats` timings of `inner` calls (peak: the least disturbed timing)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return flops / min(times)


def measured_peaks() -> dict:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    x = torch.randn(100, 64, 32, 32).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        return {"sgemm_2048": best_rate(lambda: a @ b, 2 * 2048 ** 3),
                "conv3x3_64ch_nhwc": best_rate(lambda: conv(x), 2 * 100 * 64 * 64 * 9 * 32 * 32)}


def conv_vae_step_rate(data) -> dict:
    """FLOPs of one conv VAE training step (forward + backward, batch 100, plain layers), and the fast path's
    median step time over 3 epochs (after 1 warm-up epoch)."""
    preset = MODELS["conv_vae"]
    model = build_seeded(preset.spec(data.shape), 0)
    batch = data.train_x[:100]
    counter = FlopCounterMode(display=False)
    with counter:
        loss_parts(model, batch, preset.config())["loss"].mean().backward()
    flops = counter.get_total_flops()
    step_s = []
    for epochs in (1, 3):
        model = build_seeded(preset.spec(data.shape), 0)
        last, times = [None], []

        def tick(event):
            if isinstance(event, StepEvent):
                now = time.perf_counter()
                if last[0] is not None and event.step % 40 != 1:  # skip the first step of each epoch
                    times.append(now - last[0])
                last[0] = now
        fit(model, data.train_x, data.test_x[:0], preset.config(epochs=epochs), on_event=tick)
        step_s = times
    step = statistics.median(step_s)
    return {"flops_per_step": flops, "median_step_s": step, "achieved": flops / step}


def keep_other_rows(report: dict, previous: Path) -> None:
    """With --only, the other checkpoints' rows (each with its own reference run and date) and the speed numbers
    come from the previous report, so the tables stay whole; `measured` on each row says when."""
    if not previous.exists():
        return
    prev = json.loads(previous.read_text())
    rows = {r["name"]: r for r in prev.get("models", [])}
    rows.update({r["name"]: r for r in report["models"]})
    report["models"] = [rows[name] for name in sorted(rows)]
    report["speed"] = prev.get("speed")
    report["rows_kept_from"] = prev["machine"]["date"]


# ---- report ------------------------------------------------------------------------------------------------

def fmt(v, digits=2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(report: dict) -> str:
    m = report["machine"]
    kept = report.get("rows_kept_from")
    lines = [f"Quality of the shipped checkpoints on their test splits; {m['cpu']}, torch {m['torch']}, "
             f"{m['torch_threads']} threads, {m['date']}"
             + (f" (only {report['config']['only']}; the other rows and the speed line are from the run of {kept})"
                if kept else "") + f". IW-NLL with k = {report['config']['iw_samples']}.", "",
             "| checkpoint | data | epochs (selected) | -ELBO nats (recon + KL) | IW-NLL | MSE | PSNR dB | SSIM | "
             "probe acc | active units | artifact score |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["models"]:
        q = r["metrics"]
        elbo = (f"{q['neg_elbo']:.1f} ({q['recon_nats']:.1f} + {q['kl_nats']:.1f})" if "neg_elbo" in q else "-")
        iw = next((v for k, v in q.items() if k.startswith("iw_nll")), None)
        refit = ", refit on all training images" if "--refit" in (r.get("command") or "") else ""
        lines.append(f"| {r['name']} | {r['dataset']} | {r['epochs']} ({r['selected_epoch'] or '-'}{refit}) | {elbo} | "
                     f"{fmt(iw, 1)} | {q['mse']:.4f} | {q['psnr']:.1f} | {q['ssim']:.3f} | "
                     f"{fmt(q.get('probe_accuracy'), 3)} | {q.get('active_units', '-')} | "
                     f"{q['artifact_score']:.2f} |")
    lines += ["", "Denoising: PSNR (dB) of the output for inputs with Gaussian noise, beside the noisy input's PSNR.",
              "", "| checkpoint | " + " | ".join(f"sigma {s}: noisy -> output" for s in SIGMAS) + " |",
              "|---|" + "---|" * len(SIGMAS)]
    for r in report["models"]:
        q = r["metrics"]
        lines.append(f"| {r['name']} | " + " | ".join(
            f"{q[f'psnr_noisy_{s}']:.1f} -> {q[f'psnr_out_{s}']:.1f}" for s in SIGMAS) + " |")
    refs = [r for r in report["models"] if "reference" in r]
    if refs:
        lines += ["", "Shipped VAEs against the tutorial reference trained in the same run (same architecture and "
                  "beta, the whole training split); test objective in nats (-ELBO; recon + beta KL for the "
                  f"beta-VAE). The bar is the reference's best test epoch within {BAR_EPOCHS} (picked on test); "
                  "the shipped model's epoch was picked on validation.", "",
                  f"| checkpoint | shipped (epochs) | reference best within {BAR_EPOCHS} epochs (epoch) | reference at "
                  "the shipped epochs | reference best over its run | shipped beats the bar by |",
                  "|---|---|---|---|---|---|"]
        for r in refs:
            ref, shipped = r["reference"], r["metrics"]["objective_loss"]
            lines.append(f"| {r['name']} | {shipped:.2f} ({r['epochs']}) | {ref['best']:.2f} ({ref['best_epoch']}) | "
                         f"{ref['at_shipped_epochs']:.2f} | {ref.get('best_overall', ref['best']):.2f} "
                         f"({ref['epochs']} epochs) | {ref['best'] - shipped:+.2f} |")
    speed = report.get("speed")
    if speed:
        step, peaks = speed["conv_vae_step"], speed["peaks"]
        lines += ["", f"Conv VAE training step (batch 100): {step['flops_per_step'] / 1e9:.2f} GFLOP of the plain "
                  f"model in {step['median_step_s'] * 1e3:.1f} ms (median) = {step['achieved'] / 1e9:.0f} GFLOP/s; "
                  + "; ".join(f"{k} peak {v / 1e9:.0f} GFLOP/s ({step['achieved'] / v:.0%})"
                              for k, v in peaks.items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated checkpoint names (file stems)")
    p.add_argument("--ref-epochs", type=int, default=BAR_EPOCHS, help=f"at least {BAR_EPOCHS}")
    p.add_argument("--no-refs", action="store_true", help="skip the tutorial reference runs")
    p.add_argument("--no-speed", action="store_true", help="skip the FLOP/s measurement")
    p.add_argument("--iw-samples", type=int, default=200)
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = p.parse_args(argv)
    paths = list_checkpoints(ROOT / "checkpoints")
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")}
        paths = [q for q in paths if q.stem in wanted]
    if not paths:
        p.error("no checkpoints to evaluate")
    if args.ref_epochs < BAR_EPOCHS:
        p.error(f"--ref-epochs must be at least {BAR_EPOCHS}: the bar is the reference's best within {BAR_EPOCHS}")
    log = lambda s: print(s, flush=True)  # noqa: E731
    report = {"machine": machine_info(torch.get_num_threads()),
              "config": {"iw_samples": args.iw_samples, "ref_epochs": args.ref_epochs, "sigmas": SIGMAS,
                         "only": args.only, "command": " ".join(["python", *sys.argv])}, "models": []}
    report["machine"]["loadavg_start"] = loadavg()
    for path in paths:
        log(f"evaluating {path.name}")
        ckpt = load_checkpoint(path)
        data = load_dataset(ckpt.dataset)
        row = evaluate_checkpoint(path.stem, ckpt, data, args.iw_samples)
        if not args.no_refs and row["spec"]["variational"]:
            row["reference"] = reference_run(row, ckpt, data, args.ref_epochs, log)
        report["models"].append(row)
    if args.only:
        keep_other_rows(report, Path(args.out) / "quality.json")
    if not args.no_speed:
        log("measuring FLOP/s")
        report["speed"] = {"peaks": measured_peaks(), "conv_vae_step": conv_vae_step_rate(load_dataset("mnist-5k"))}
    finish_report(args.out, "quality", report, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
