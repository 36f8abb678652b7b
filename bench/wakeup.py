"""What waking an idle OpenMP thread costs on this machine, per wait policy, and how much CPU the hypervisor steals.

    python bench/wakeup.py [--repeats 3] [--out bench/results]

Why: the thread policy (aecore/runtime.py) trades spinning against sleeping. A sleeping thread must be woken for
every parallel op that follows a pause; on a quiet bare machine that costs microseconds, on a busy virtual machine
(CPU time stolen by the host) it was measured at ~0.2 ms, more than a small model's whole op. Each policy runs in a
fresh process (the policy is read when torch loads), interleaved over repeats. It times one 2-thread elementwise add
(200,000 floats) back to back and after a 2 ms pause of the main thread (the partner has gone to sleep by then
unless it still spins); the difference is the wake-up. `steal` is the share of this machine's CPU time the
hypervisor took while the benchmark ran (/proc/stat). Writes wakeup.json and wakeup.md.
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

POLICIES = {"aecore": {}, "library default (300,000 spins)": {"GOMP_SPINCOUNT": "300000"},
            "passive": {"OMP_WAIT_POLICY": "PASSIVE"}}
PAUSE_S, N_OPS = 2e-3, 300


def child() -> None:
    import aecore  # noqa: F401  (the wait policy, unless the environment already chose one)
    import torch

    torch.set_num_threads(2)
    a, b, out = torch.rand(200_000), torch.rand(200_000), torch.empty(200_000)

    def op_us(pause: float) -> float:
        times = []
        for _ in range(N_OPS):
            t = time.perf_counter()
            while time.perf_counter() - t < pause:  # busy, like the Python between two ops of a page
                pass
            t = time.perf_counter()
            torch.add(a, b, out=out)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e6

    op_us(0)  # thread pool up
    print(json.dumps({"back_to_back_us": op_us(0), "after_pause_us": op_us(PAUSE_S)}))


def cpu_times() -> list[int]:
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for wakeup.json / wakeup.md")
    args = ap.parse_args()
    if args.child:
        child()
        return 0
    from bench.machine import finish_report, machine_info

    from aecore.runtime import USER_CHOICE

    clean = {k: v for k, v in os.environ.items() if k not in USER_CHOICE}  # each child gets only its policy's settings
    runs: dict[str, list[dict]] = {p: [] for p in POLICIES}
    before = cpu_times()
    for r in range(args.repeats):
        for name, env in POLICIES.items():
            out = subprocess.run([sys.executable, __file__, "--child"], env={**clean, **env}, capture_output=True,
                                 text=True, check=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"repeat {r + 1}/{args.repeats} {name}: {runs[name][-1]}", flush=True)
    after = cpu_times()
    delta = [b - a for a, b in zip(before, after)]
    steal = delta[7] / max(1, sum(delta[:8])) if len(delta) > 7 else None
    report = {"machine": machine_info(2), "pause_s": PAUSE_S, "steal_share": steal, "runs": runs}
    finish_report(args.out, "wakeup", report, markdown)
    return 0


def markdown(report: dict) -> str:
    m = report["machine"]
    steal = report["steal_share"]
    lines = [f"OpenMP wake-up cost, {m['date']}, {m['cpu']} ({m['cpu_flags']}), torch {m['torch']}; CPU time stolen "
             f"by the host during the run: {'unknown' if steal is None else f'{steal:.0%}'}", "",
             "| wait policy | 2-thread add, back to back (us) | after a 2 ms pause (us) | wake-up (us) |",
             "|---|---|---|---|"]
    for name, rs in report["runs"].items():
        b2b = statistics.median(r["back_to_back_us"] for r in rs)
        paused = statistics.median(r["after_pause_us"] for r in rs)
        spread = f"{min(r['after_pause_us'] for r in rs):.0f}-{max(r['after_pause_us'] for r in rs):.0f}"
        lines.append(f"| {name} | {b2b:.0f} | {paused:.0f} ({spread}) | {paused - b2b:.0f} |")
    lines += ["", "Medians over repeats of each process's median over 300 ops; range over repeats in brackets. "
              "`aecore` is runtime.SHORT_SPIN."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
