"""Conv VAE training speed when the CPU is shared: quiet, with busy neighbours, and two runs at once.

    python bench/contention.py [--steps N] [--repeats N] [--policies aecore,spin] [--out FOLDER]

Each measurement is a fresh process that trains the conv VAE (batch 100, mnist-5k) for `--steps` steps after 5
warm-up steps and reports training images/s, exactly as the app's worker runs it: `runtime.threads_for(runs)`
threads and the fast-path plan measured once by this script (passed to every child, so all compare the same
kernels). Scenarios, interleaved within each repeat so machine noise hits all of them:

* quiet: one run alone;
* 1 neighbour / 2 neighbours: the same run beside 1 or 2 busy-loop processes (pure-Python spin, ended by pid);
* two runs at once: two training processes started together, each with threads_for(2).

Policies (how idle OpenMP threads wait; set before torch loads):
* aecore: what `aecore.runtime` sets (`SHORT_SPIN`, unless the user set a policy);
* spin: libgomp's own default (GOMP_SPINCOUNT=300000): the behaviour before #10;
* passive, brief1k, brief, spin30k: sleep at once; 1,000, 10,000 or 30,000 spins before sleeping.

Targets (issue #10): with one neighbour >= 0.5x quiet; two runs at once each >= 0.4x of one alone.
Writes bench/results/contention.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POLICY_ENV = {"aecore": {}, "spin": {"GOMP_SPINCOUNT": "300000"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
              "brief": {"GOMP_SPINCOUNT": "10000"}, "brief1k": {"GOMP_SPINCOUNT": "1000"},
              "spin30k": {"GOMP_SPINCOUNT": "30000"}}
TARGETS = {"1 neighbour": 0.5, "two runs at once": 0.4}


def child(steps: int, runs: int) -> None:
    """Train and print {"images_per_s": ...} as one JSON line."""
    import aecore  # noqa: F401  (the wait policy before torch)
    from aecore import runtime
    from aecore.catalog import get_preset
    from aecore.data import load_dataset
    from aecore.fit import fit
    from aecore.train import StepEvent, build_seeded

    threads = runtime.use_threads(runtime.threads_for(runs))
    runtime.keep_freed_memory()  # as the app's run worker does
    data = load_dataset("mnist-5k")
    preset = get_preset("conv_vae")
    cfg = preset.config(epochs=100, batch_size=100, max_steps=steps + 5)
    model = build_seeded(preset.spec(data.shape), 0)
    clock = {"t0": None, "seen": 0}
    tuner = runtime.ThreadTuner()  # as the app's run worker chooses its threads

    def tick(event):  # the first 5 steps are warm-up
        if isinstance(event, StepEvent):
            runtime.use_threads(tuner.after_step(time.perf_counter(), threads))
            if event.step == 5:
                clock["t0"] = time.perf_counter()
            elif event.step > 5:
                clock["seen"] += 100
    fit(model, data.train_x, data.test_x[:0], cfg, on_event=tick)
    rate = clock["seen"] / (time.perf_counter() - clock["t0"])
    print(json.dumps({"images_per_s": rate, "threads": threads}), flush=True)


def _spawn(steps: int, runs: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--child", "--steps", str(steps), "--runs", str(runs)],
                            env=env, stdout=subprocess.PIPE, text=True)


def _result(p: subprocess.Popen) -> float:
    out, _ = p.communicate(timeout=900)
    if p.returncode:
        raise RuntimeError(f"a training child failed with exit code {p.returncode}")
    return json.loads(out.strip().splitlines()[-1])["images_per_s"]


def _neighbours(n: int, seconds: float = 900) -> list[subprocess.Popen]:
    loop = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(n)]


def measure(scenario: str, steps: int, env: dict) -> list[float]:
    if scenario == "two runs at once":
        procs = [_spawn(steps, 2, env) for _ in range(2)]
        return [_result(p) for p in procs]
    busy = _neighbours({"quiet": 0, "1 neighbour": 1, "2 neighbours": 2}[scenario])
    try:
        return [_result(_spawn(steps, 1, env))]
    finally:
        for b in busy:  # ended by pid, always
            b.kill()
            b.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--policies", default="aecore,spin")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for contention.json / .md")
    args = ap.parse_args()
    if args.child:
        return child(args.steps, args.runs)

    import aecore  # noqa: F401
    from aecore import fastpath, runtime
    from bench.machine import finish_report, loadavg, machine_info

    plan = fastpath.plan()  # measured once, quiet, and given to every child
    forced = ",".join(n for n in fastpath.PATHS if getattr(plan, n)) or "none"
    scenarios = ["quiet", "1 neighbour", "2 neighbours", "two runs at once"]
    policies = args.policies.split(",")
    raw = {p: {s: [] for s in scenarios} for p in policies}
    load0 = loadavg()
    for r in range(args.repeats):
        for policy in policies:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            env.update(POLICY_ENV[policy], AECORE_FASTPATHS=forced, PYTHONPATH=str(ROOT))
            for s in scenarios:
                raw[policy][s].extend(measure(s, args.steps, env))
                rate = raw[policy][s][-1]
                print(f"repeat {r + 1}/{args.repeats} {policy:7s} {s:17s} {rate:7.0f} images/s", flush=True)
    summary = {}
    for policy in policies:
        quiet = statistics.median(raw[policy]["quiet"])
        summary[policy] = {s: {"median": statistics.median(v), "min": min(v), "max": max(v),
                               "ratio_to_quiet": statistics.median(v) / quiet,
                               "worst_ratio_to_quiet": min(v) / quiet} for s, v in raw[policy].items()}
    machine = machine_info(runtime.threads_for(1))
    machine.update(loadavg_start=load0, plan=plan.to_dict())
    report = {"machine": machine, "steps": args.steps, "repeats": args.repeats, "raw": raw, "summary": summary,
              "targets": TARGETS}
    finish_report(args.out, "contention", report, markdown)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Contention: conv VAE training, batch 100 ({report['steps']} timed steps, {report['repeats']} repeats)",
             "", f"{m['cpu']} ({m['cpu_capability']}; {m['cpu_flags']}), budget {m['runtime']['cpu_budget']} CPUs, "
             f"torch {m['torch']}, {m['date']}; fast paths: {m['plan']['reason']}", "",
             "| policy | scenario | images/s median (min-max) | x quiet (worst) | target |", "|---|---|---|---|---|"]
    for policy, rows in report["summary"].items():
        for s, v in rows.items():
            target = report["targets"].get(s)
            ok = "" if target is None else (f">= {target} {'met' if v['worst_ratio_to_quiet'] >= target else 'MISSED'}")
            lines.append(f"| {policy} | {s} | {v['median']:.0f} ({v['min']:.0f}-{v['max']:.0f}) | "
                         f"{v['ratio_to_quiet']:.2f} ({v['worst_ratio_to_quiet']:.2f}) | {ok} |")
    lines += ["", "two runs at once: each run's images/s against one run alone (quiet); 'worst' is the slowest "
              "measurement over the median quiet one.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
