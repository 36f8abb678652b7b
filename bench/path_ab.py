"""One CPU fast path on against off, interleaved in one process: decodes of 100 codes and training steps.

    python bench/path_ab.py --path resize_conv --models conv_vae:bilinear,conv_ae_narrow:nearest [--rounds 8]

For each model (an aecore.catalog preset, with an optional `:upsample`) the process measures its plan as the app
and the CLI do, then alternates the named path on and off: a round is 5 decodes of 100 codes without gradients
(the IW-NLL and page shape; the fastest of the 5 is kept) and 10 training steps at batch 32 (Adam, the preset's
loss; their mean is kept), first with the path on, then off. The first round is discarded. Separate processes
are not compared: on a shared VM the same decode took 17 or 27-29 ms from one process to the next (allocator
state, 2026-12-03). The allocator is tuned as in eval and the run workers (runtime.keep_freed_memory).
Reports the median and spread over rounds and off/on ratios, with the machine's CPU and flags.
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

from aecore import fastpath, runtime  # noqa: E402
from aecore.catalog import MODELS, get_preset  # noqa: E402
from aecore.data import load_dataset  # noqa: E402
from aecore.models import build_model  # noqa: E402
from aecore.train import loss_parts  # noqa: E402
from bench.machine import finish_report, loadavg, machine_info, summary  # noqa: E402


def bench_model(name: str, upsample: str | None, path: str, rounds: int, data) -> dict:
    preset = get_preset(name)
    torch.manual_seed(0)
    model = build_model(preset.spec(data.shape, None, upsample))
    plan = fastpath.plan()
    measured = getattr(plan, path)  # what this machine chose, before the toggling below
    cfg, g = preset.config(), torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    z = torch.randn(100, model.spec.latent_dim)

    def decode() -> float:
        model.eval()
        times = []
        with torch.inference_mode():
            for _ in range(5):
                t0 = time.perf_counter()
                model.decode_logits(z) if model.variational else model.decode(z)
                times.append(time.perf_counter() - t0)
        return min(times)

    def steps(n: int = 10) -> float:
        fastpath.adopt(model).train()
        fmt = fastpath.memory_format(model)
        t0 = time.perf_counter()
        for i in range(n):
            xb = data.train_x[i * 32 : (i + 1) * 32].contiguous(memory_format=fmt)
            with fastpath.training_precision(model):
                loss = loss_parts(model, xb, cfg, g)["loss"].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return (time.perf_counter() - t0) / n

    out = {on: {"decode_ms": [], "step_ms": []} for on in ("on", "off")}
    for r in range(rounds + 1):
        for on in ("on", "off"):
            plan.__dict__[path] = on == "on"  # a MeasuredPlan keeps decided paths as plain attributes
            d, s = decode(), steps()
            if r:
                out[on]["decode_ms"].append(d * 1e3)
                out[on]["step_ms"].append(s * 1e3)
    plan.__dict__[path] = measured
    res = {on: {k: summary(v) for k, v in vals.items()} for on, vals in out.items()}
    return {"measured_on": measured, "gain": plan.gains.get(path), **res,
            "ratio": {k: res["off"][k]["median"] / res["on"][k]["median"] for k in ("decode_ms", "step_ms")}}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Fast path `{report['path']}` on vs off, {m.get('date', '')}, {m.get('logical_cpus')} CPUs: "
             f"{m.get('cpu')} ({m.get('cpu_flags')}); {report['rounds']} rounds; plan: {report['plan']}", "",
             "| model | decode of 100, on / off (ms: median, range) | off/on | training step, batch 32, on / off (ms) "
             "| off/on |",
             "|---|---|---|---|---|"]
    for name, r in report["models"].items():
        cell = lambda k: " / ".join(  # noqa: E731
            f"{r[o][k]['median']:.1f} ({r[o][k]['min']:.1f}-{r[o][k]['max']:.1f})" for o in ("on", "off"))
        lines.append(f"| {name} | {cell('decode_ms')} | {r['ratio']['decode_ms']:.2f}x | {cell('step_ms')} | "
                     f"{r['ratio']['step_ms']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--path", required=True, choices=fastpath.PATHS)
    p.add_argument("--models", default="conv_vae:bilinear,conv_vae:nearest,conv_ae_narrow:bilinear")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for path_ab.json / .md")
    args = p.parse_args(argv)
    models = [tuple((m.split(":") + [None])[:2]) for m in args.models.split(",") if m.strip()]
    unknown = [n for n, _ in models if n not in MODELS]
    if unknown or args.rounds < 1:
        p.error(f"unknown model(s) {', '.join(unknown)}" if unknown else "rounds must be >= 1")
    runtime.use_threads(runtime.cpu_budget())
    runtime.keep_freed_memory()
    data = load_dataset("mnist-5k")
    report = {"machine": machine_info(torch.get_num_threads()), "path": args.path, "rounds": args.rounds,
              "command": " ".join(["python", *sys.argv]), "models": {}}
    report["machine"]["loadavg_start"] = loadavg()
    for name, upsample in models:
        label = f"{name}:{upsample}" if upsample else name
        print(f"{label} ...", flush=True)
        report["models"][label] = bench_model(name, upsample, args.path, args.rounds, data)
    report["plan"] = fastpath.plan().reason
    finish_report(args.out, "path_ab", report, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
