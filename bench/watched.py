"""A run watched in the browser against the same run from the command line, quiet and with a busy neighbour.

    python bench/watched.py [--repeats 3] [--epochs 1]

* headless: `python -m aecore train --model conv_vae --epochs N --iw-samples 0 --quiet --out ...`, wall time from
  launch to exit (process start and torch import included); and the same with `--adapt-threads` (the app
  workers' thread tuner, opt-in on the CLI because it gives up bitwise reproducibility).
* watched: the real app (`streamlit run app.py`) in headless Chromium; a fresh browser session opens
  `/train?preset=conv_vae&epochs=N`, clicks Start and waits for "Model ready" with the live view on screen.
  The Streamlit server, Chromium and the training worker all share the machine, as on a laptop.

Both train the same model, data and recipe (mnist-5k, the Train page's default batch size, learning rate and
schedule, seed 0). Runs alternate (headless, watched, ...), quiet
and with one busy-loop neighbour process. Also recorded: the server's RSS while a run goes (the worker is a separate
process, also reported) and the cost of `import torch`. Targets (issue #10): watched <= 1.2x headless quiet,
<= 2x with one neighbour; server RSS with one run going <= 1 GB.
Writes watched.json and .md to --out (default bench/results). Needs Debian's chromium and playwright.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench.contention import _neighbours  # noqa: E402
from bench.machine import finish_report, loadavg, machine_info  # noqa: E402
from test_browser import CHROMIUM, Server, settle  # noqa: E402

TARGETS = {"quiet": 1.2, "1 neighbour": 2.0}


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    except (OSError, ValueError):
        return []


def headless(epochs: int, adapt: bool = False) -> float:
    from ui.training import default_recipe

    recipe = default_recipe("conv_vae")  # the Train page's batch size, learning rate and schedule
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aecore", "train", "--model", "conv_vae", "--epochs", str(epochs),
                        "--batch-size", str(recipe["batch_size"]), "--lr", str(recipe["lr"]),
                        "--lr-schedule", recipe["lr_schedule"], "--iw-samples", "0", "--quiet", "--out", f"{d}/x.pt",
                        *(["--adapt-threads"] if adapt else [])],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t


def watched(browser, server: Server, epochs: int) -> tuple[float, dict]:
    """Seconds from Start to "Model ready", and the memory seen while the run went."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # a fresh session: a new visitor
    page = context.new_page()
    page.goto(f"{server.url}/train?preset=conv_vae&epochs={epochs}")
    settle(page, 300_000)
    memory = {"server_rss_mb": 0.0, "worker_rss_mb": 0.0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            memory["server_rss_mb"] = max(memory["server_rss_mb"], rss_mb(server.proc.pid))
            for child in children(server.proc.pid):  # the fork server; its children are the workers
                for worker in children(child):
                    memory["worker_rss_mb"] = max(memory["worker_rss_mb"], rss_mb(worker))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Model ready").wait_for(timeout=900_000)
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    context.close()
    return seconds, memory


def torch_import_mb() -> float:
    code = ("rss = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]); "
            "a = rss(); import torch; print((rss() - a) / 1024)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for watched.json / .md")
    args = ap.parse_args()
    scenarios = ["quiet", "1 neighbour"]
    raw = {s: {"headless": [], "watched": [], "headless_adapt": []} for s in scenarios}
    memory = []
    load0 = loadavg()
    server = Server()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-quic", "--no-first-run", "--disable-sync"])
            watched(browser, server, args.epochs)  # warm-up: the server's first page and fork server
            for r in range(args.repeats):
                for s in scenarios:
                    busy = _neighbours(1 if s == "1 neighbour" else 0)
                    try:
                        raw[s]["headless"].append(headless(args.epochs))
                        raw[s]["headless_adapt"].append(headless(args.epochs, adapt=True))
                        seconds, mem = watched(browser, server, args.epochs)
                        raw[s]["watched"].append(seconds)
                        memory.append(mem)
                    finally:
                        for b in busy:
                            b.kill()
                            b.wait()
                    print(f"repeat {r + 1} {s:12s} headless {raw[s]['headless'][-1]:6.1f} s, watched "
                          f"{raw[s]['watched'][-1]:6.1f} s, --adapt-threads {raw[s]['headless_adapt'][-1]:6.1f} s, "
                          f"server RSS {mem['server_rss_mb']:.0f} MB", flush=True)
            browser.close()
        peak = rss_mb(server.proc.pid, "VmHWM")
    finally:
        server.stop()
    summary = {}
    for s, v in raw.items():
        ratios = [w / h for w, h in zip(v["watched"], v["headless"])]
        summary[s] = {"headless_median_s": statistics.median(v["headless"]),
                      "watched_median_s": statistics.median(v["watched"]),
                      "headless_adapt_median_s": statistics.median(v["headless_adapt"]),
                      "ratio_median": statistics.median(ratios), "ratio_max": max(ratios), "ratios": ratios}
    machine = machine_info(0)
    machine.update(loadavg_start=load0)
    report = {"machine": machine, "epochs": args.epochs, "repeats": args.repeats, "raw": raw, "summary": summary,
              "targets": TARGETS, "memory": {"during_runs": memory, "server_peak_rss_mb": peak,
                                             "torch_import_mb": torch_import_mb()}}
    finish_report(args.out, "watched", report, markdown)


def markdown(report: dict) -> str:
    m, mem = report["machine"], report["memory"]
    lines = [f"# Watched in the browser vs headless: conv VAE, {report['epochs']} epoch(s), {report['repeats']} "
             "repeats", "", f"{m['cpu']} ({m['cpu_capability']}; {m['cpu_flags']}), torch {m['torch']}, {m['date']}",
             "", "| scenario | headless s (CLI) | watched s (app) | watched / headless, median (max) | target | "
             "headless s with --adapt-threads |", "|---|---|---|---|---|---|"]
    for s, v in report["summary"].items():
        target = report["targets"][s]
        ok = "met" if v["ratio_max"] <= target else ("met by the median" if v["ratio_median"] <= target else "MISSED")
        lines.append(f"| {s} | {v['headless_median_s']:.1f} | {v['watched_median_s']:.1f} | {v['ratio_median']:.2f} "
                     f"({v['ratio_max']:.2f}) | <= {target}: {ok} | {v['headless_adapt_median_s']:.1f} |")
    server = max(x["server_rss_mb"] for x in mem["during_runs"])
    worker = max(x["worker_rss_mb"] for x in mem["during_runs"])
    lines += ["", f"Memory: the Streamlit server peaked at {server:.0f} MB RSS while runs went (VmHWM over the whole "
              f"benchmark {mem['server_peak_rss_mb']:.0f} MB); a training worker at {worker:.0f} MB (much of it "
              f"shared with the fork server); `import torch` alone costs "
              f"{mem['torch_import_mb'] or float('nan'):.0f} MB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
