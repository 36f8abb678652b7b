"""App latency and memory, measured by driving the real app in headless Chromium.

    python bench/app_latency.py [--repeats 3] [--out bench/results/<machine>]

For each page: seconds from navigation to the script finishing (Streamlit's notRunning state), first visit and
repeat visits; then a 1-epoch conv VAE run started from Train; and the server process's peak RSS (VmHWM) and its
RSS after the pages and after the run.
Writes app_latency.json and .md to --out (default bench/results), with the CPU model, its flags and the load.
Needs Debian's chromium and playwright.
"""
import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from bench.machine import loadavg, machine_info  # noqa: E402
from test_browser import CHROMIUM, PAGES, Server, nav, settle  # noqa: E402  (one server/browser helper)

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402


def memory_mb(pid: int, key: str) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")


def visit(page, label: str, title: str) -> float:
    """Seconds from clicking the navigation link until the page's heading shows and its script has finished."""
    t = time.perf_counter()
    nav(page, label).click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=300_000)
    settle(page, 300_000)
    return time.perf_counter() - t


# Marks that the app's script ran since it was armed: a MutationObserver sees the running -> notRunning flip even when
# a fast rerun is over before the benchmark could look (waiting for 'running' then cost a 5 s timeout instead).
# The whole document is watched: the app element may be re-mounted by a rerun.
ARM = """() => { if (window.__rerunWatch) window.__rerunWatch.disconnect();
  window.__reran = false;
  window.__rerunWatch = new MutationObserver(() => { window.__reran = true; });
  window.__rerunWatch.observe(document.body, {attributes: true, subtree: true,
                                              attributeFilter: ['data-test-script-state']}); }"""
RERUN_DONE = """() => window.__reran && document.querySelector("[data-testid='stApp']")
  .getAttribute('data-test-script-state') === 'notRunning'"""


def rerun_seconds(page, action) -> float:
    """Seconds from a widget interaction until the rerun it triggers has finished."""
    page.wait_for_timeout(300)  # not timed: a click landing as the last rerun's widgets re-mount can be lost
    page.evaluate(ARM)
    t = time.perf_counter()
    action()
    try:
        page.wait_for_function(RERUN_DONE, timeout=120_000)
    except PlaywrightTimeout:
        raise RuntimeError(f"no rerun followed {action!r}: the page changed, fix this benchmark") from None
    return time.perf_counter() - t


def nudge_slider(page, label: str, last: bool = False, key: str = "ArrowRight"):
    """Focus the (first or last) slider whose label contains `label` and press an arrow key: one step, one rerun."""
    def nudge():
        sliders = page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")
        slider = sliders.last if last else sliders.first
        before = slider.input_value()
        for _ in range(3):  # on a loaded machine a key can land before the slider listens: press again
            slider.press(key)
            for _ in range(40):  # the thumb moves within a few frames
                if slider.input_value() != before:
                    return
                time.sleep(0.05)
        raise RuntimeError(f"the slider {label!r} did not move: the page changed, fix this benchmark")
    return nudge


def open_page(page, url: str) -> None:
    page.goto(url)
    settle(page, 300_000)
    page.wait_for_timeout(1000)  # a key press or click right after a load can land before the widgets listen


def interactions(page, url: str, repeats: int) -> dict:
    """The main interactions, each on a page opened by URL: reconstruct a bigger grid, project the test codes of a
    20-D model with t-SNE and back to PCA, recompute the overlap map of stacked layers, and three Evaluation Lab
    controls (each reruns only its own section)."""
    out = {}
    open_page(page, f"{url}/reconstruct?model=shipped:conv_vae_z2")
    out["Reconstruct: one more image in the grid"] = [rerun_seconds(page, nudge_slider(page, "Images"))
                                                      for _ in range(repeats)]
    open_page(page, f"{url}/latent?model=shipped:conv_vae_z20&proj=pca")
    radio = lambda name: lambda: page.locator("[data-testid='stRadio']").get_by_text(name, exact=True).click()  # noqa
    out["Latent: project 1,000 20-D codes with t-SNE"] = []
    out["Latent: back to PCA"] = []
    for _ in range(repeats):
        out["Latent: project 1,000 20-D codes with t-SNE"].append(rerun_seconds(page, radio("t-SNE")))
        out["Latent: back to PCA"].append(rerun_seconds(page, radio("PCA")))
    tab = lambda name: lambda: page.get_by_role("tab", name=name).click()  # noqa: E731  (a Lab section)
    open_page(page, f"{url}/checkerboard")
    out["Checkerboard: open a section (tab)"] = []
    for _ in range(repeats):
        out["Checkerboard: open a section (tab)"].append(rerun_seconds(page, tab("4. Trained decoders")))
        out["Checkerboard: open a section (tab)"].append(rerun_seconds(page, tab("2. Overlaps")))
    out["Checkerboard: overlap map for the next kernel size"] = [
        rerun_seconds(page, nudge_slider(page, "Kernel size (stacked layers)")) for _ in range(min(repeats, 2))]
    open_page(page, f"{url}/evaluation")
    out["Evaluation: refit four objectives for the next blob width"] = [
        rerun_seconds(page, nudge_slider(page, "Blob width")) for _ in range(repeats)]
    out["Evaluation: open a section (tab)"] = [rerun_seconds(page, tab("4. Pixel distance"))]
    step_up = page.locator("[data-testid='stNumberInput']").filter(has_text="Test digit").locator("button").last
    out["Evaluation: next test digit (pixel distances)"] = [rerun_seconds(page, step_up.click) for _ in range(repeats)]
    out["Evaluation: open a section (tab)"].append(rerun_seconds(page, tab("6. Gaussian to anything")))
    ring_seed = page.locator("[data-testid='stNumberInput']").filter(has_text="Seed").last.locator("button").last
    out["Evaluation: new Gaussian samples for the ring"] = [rerun_seconds(page, ring_seed.click)
                                                            for _ in range(repeats)]
    return {k: {"first_s": v[0], "median_s": statistics.median(v)} for k, v in out.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="folder for app_latency.json / .md")
    args = p.parse_args()
    server = Server()
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine_info(0),
               "loadavg_start": loadavg(), "cpus": __import__("os").cpu_count(), "pages": {}}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.url)
            settle(page, 300_000)
            labels = [v for v in PAGES.values()]
            for i, (label, title) in enumerate(labels):
                runs = []
                for _ in range(args.repeats):  # alternate with another page so each visit really navigates
                    other = labels[(i + 1) % len(labels)]
                    visit(page, *other)
                    runs.append(visit(page, label, title))
                results["pages"][label] = {"first_s": runs[0], "repeat_median_s": statistics.median(runs[1:] or runs)}
            results["interactions"] = interactions(page, server.url, args.repeats)
            results["rss_after_pages_mb"] = memory_mb(server.proc.pid, "VmRSS")  # what the pages keep, no run yet
            results["peak_rss_before_run_mb"] = memory_mb(server.proc.pid, "VmHWM")
            page.goto(f"{server.url}/train?preset=conv_vae&epochs=1")
            settle(page, 300_000)
            t = time.perf_counter()
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Model ready").wait_for(timeout=600_000)
            results["train_conv_vae_1_epoch_s"] = time.perf_counter() - t
            results["peak_rss_mb"] = memory_mb(server.proc.pid, "VmHWM")
            results["rss_end_mb"] = memory_mb(server.proc.pid, "VmRSS")
            browser.close()
    finally:
        server.stop()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "app_latency.json").write_text(json.dumps(results, indent=2))
    cpu = results["machine"]
    lines = [f"App latency, {results['date']}, {results['cpus']} CPUs: {cpu['cpu']} ({cpu['cpu_flags']}); load "
             f"average at the start {results['loadavg_start']}", "",
             "| page | first visit (s) | repeat visits, median (s) |", "|---|---|---|"]
    lines += [f"| {k} | {v['first_s']:.2f} | {v['repeat_median_s']:.2f} |" for k, v in results["pages"].items()]
    lines += ["", "| interaction | first (s) | median (s) |", "|---|---|---|"]
    lines += [f"| {k} | {v['first_s']:.2f} | {v['median_s']:.2f} |" for k, v in results["interactions"].items()]
    lines += ["", f"1-epoch conv VAE from Start to results: {results['train_conv_vae_1_epoch_s']:.1f} s; "
              f"server peak RSS: {results['peak_rss_mb']:.0f} MB", "",
              f"Server RSS after every page and interaction: {results['rss_after_pages_mb']:.0f} MB (peak so far "
              f"{results['peak_rss_before_run_mb']:.0f} MB); after the run: {results['rss_end_mb']:.0f} MB"]
    (out / "app_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
