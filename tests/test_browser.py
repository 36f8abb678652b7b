"""End to end in a real headless Chromium (Debian's chromium driven by Playwright): deep links on a fresh server,
navigation, and a training run watched live while switching pages. Skipped, with the reason, without a browser."""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed "
                                "(apt-get install chromium): the browser tests cannot run")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

# URL path -> (navigation label, page heading); the default page lives at "/"
PAGES = {"": ("Home", "Autoencoder Studio"), "train": ("Train", "Train an autoencoder"),
         "reconstruct": ("Reconstruct & Denoise", "Reconstruct & denoise"), "latent": ("Latent Space", "Latent space"),
         "checkerboard": ("Checkerboard Lab", "Checkerboard Lab"), "inside": ("Inside the Models", "Inside the models"),
         "evaluation": ("Evaluation Lab", "Evaluation Lab")}


class Server:
    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(self.port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        for _ in range(240):
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError("the Streamlit server did not come up")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        os.killpg(self.proc.pid, 9)
        self.proc.wait()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-quic", "--no-first-run", "--disable-sync"])
        yield b
        b.close()


def settle(page, timeout=90_000):
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


def assert_in_frame(page, title):
    page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
    nav = page.locator("[data-testid='stSidebarNav'] a")
    assert nav.count() == len(PAGES), "the app's navigation is shown"
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_text("Page not found").count() == 0


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "home" for p in PAGES])
def test_deep_link_on_a_fresh_server_shows_the_page_in_the_app_frame(browser, path):
    server = Server()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{server.url}/{path}")
        settle(page)
        assert_in_frame(page, PAGES[path][1])
        page.close()
    finally:
        server.stop()


def test_home_typed_as_a_path_opens_home(browser):
    """'/home' is what people type (and what older links carry): a hidden alias of the default page at '/'."""
    server = Server()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{server.url}/home")
        settle(page)
        assert_in_frame(page, PAGES[""][1])
        assert page.url.split("?")[0].rstrip("/") == server.url
        page.close()
    finally:
        server.stop()


def nav(page, label):
    return page.locator("[data-testid='stSidebarNav'] a").filter(has_text=label).first


# Figures whose margins plotly had to grow to fit labels, colour bars or legends (each growth is one more full draw)
PUSHED = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(g => g._fullLayout).map(g => {
  const m = g.layout.margin || {}, s = g._fullLayout._size;
  const grew = Math.max(s.l - (m.l ?? 80), s.r - (m.r ?? 80), s.t - (m.t ?? 100), s.b - (m.b ?? 80));
  return [String((g.layout.title && g.layout.title.text) || g.layout.title || '').slice(0, 60), grew]; })
  .filter(([, grew]) => grew > 10)"""


def plot_points(page):
    """Points in the loss chart's first trace (the per-step train loss), read from plotly's own data."""
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot');"
                         " return p && p.data && p.data.length ? p.data[0].x.length : 0; }")


def test_navigation_and_a_live_training_run_across_page_switches(browser):
    server = Server()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url)
        settle(page)
        for label, title in PAGES.values():  # through the navigation, not by URL
            nav(page, label).click()
            settle(page)
            assert_in_frame(page, title)
        page.goto(f"{server.url}/train?preset=conv_vae&epochs=1")
        settle(page)
        page.get_by_role("button", name="Start").click()
        seen = set()
        deadline = time.time() + 300  # generous: CI machines are shared and noisy
        while len(seen) < 2 and time.time() < deadline:  # the chart grows while the run goes on
            seen.add(plot_points(page))
            seen.discard(0)
            time.sleep(0.2)
        assert len(seen) >= 2, f"the loss chart never updated: {seen}"
        nav(page, "Latent Space").click()  # away and back while it runs
        settle(page)
        assert_in_frame(page, PAGES["latent"][1])
        nav(page, "Train").click()
        page.get_by_text("Model ready").wait_for(timeout=600_000)
        assert plot_points(page) >= max(seen), "the finished run's chart holds at least what was seen live"
        page.wait_for_timeout(500)
        assert not page.evaluate(PUSHED), f"figures drawn twice to fit their margins: {page.evaluate(PUSHED)}"
        page.close()
    finally:
        server.stop()


MARKUP = "[evil link](http://evil.example/x) ![img](http://evil.example/i.png) :material/warning: **bold**"


def test_names_from_an_uploaded_checkpoint_render_as_text(browser, tmp_path):
    """A checkpoint's model and dataset names are the uploader's text: shown as typed, never a link or image."""
    import json

    import torch

    p = torch.load(ROOT / "checkpoints" / "linear_ae.pt", weights_only=True)
    meta = json.loads(p["meta"])
    meta["model_name"] = MARKUP
    p["meta"] = json.dumps(meta)
    torch.save(p, tmp_path / "markup.pt")
    server = Server()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url)
        settle(page)
        page.locator("[data-testid='stSidebar'] input[type='file']").set_input_files(str(tmp_path / "markup.pt"))
        page.get_by_text("Loaded").first.wait_for(state="attached", timeout=60_000)  # inside the closed expander
        settle(page)
        for path in ("", "reconstruct", "latent"):
            label, title = PAGES[path]
            nav(page, label).click()
            settle(page)
            assert_in_frame(page, title)  # the page itself, not the one before it
            if path:  # the pages that caption the picked model; the joiner: ui/text.py breaks bare URLs with it
                page.wait_for_function("() => document.body.innerText.replaceAll('\\u2060', '')"
                                       ".includes('[evil link](http://evil.example/x) ![img]')", timeout=60_000)
            assert page.locator("a[href*='evil.example'], img[src*='evil.example']").count() == 0, label
        page.close()
    finally:
        server.stop()


def test_editing_the_mixture_table_refits_and_keeps_the_link(browser):
    """The Evaluation Lab's blob table is a data editor: an edited centre reaches the fit and the URL."""
    server = Server()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(f"{server.url}/evaluation?mix=-2.5,-1;2.5,-1;0,2.5")
        page.get_by_role("heading", name="1 · What the objective does to the fit").wait_for(timeout=120_000)
        settle(page)
        box = page.locator("[data-testid='stDataFrame']").first.bounding_box()
        page.mouse.dblclick(box["x"] + 110, box["y"] + 52)  # first row, x (rows are 35 px under a 35 px header)
        page.wait_for_function("() => ['TEXTAREA', 'INPUT'].includes(document.activeElement.tagName)",
                               timeout=30_000)  # the cell's editor is open
        for attempt in range(3):  # on a busy machine keys can land before the editor listens: type again
            page.keyboard.press("Control+A")
            page.keyboard.type("1.5", delay=50)
            try:
                page.wait_for_function("() => document.activeElement.value === '1.5'", timeout=10_000)
                break
            except playwright.TimeoutError:
                if attempt == 2:
                    raise
        time.sleep(0.3)  # the grid reads the typed value on its next frame; Enter before that commits the old one
        page.keyboard.press("Enter")
        page.wait_for_function("() => new URLSearchParams(location.search).get('mix') === '1.5,-1;2.5,-1;0,2.5'",
                               timeout=60_000)
        settle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        page.close()
    finally:
        server.stop()


def test_a_guided_step_opens_its_page_with_its_settings(browser):
    """Home's step 2 link, clicked as a student would: Reconstruct with the denoising AE at its noise."""
    server = Server()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(server.url)
        settle(page)
        page.get_by_text("Open Reconstruct with the denoising AE").click()
        page.get_by_role("heading", name="Reconstruct & denoise").first.wait_for(timeout=60_000)
        settle(page)
        assert_in_frame(page, "Reconstruct & denoise")
        page.wait_for_function("() => new URLSearchParams(location.search).get('noise') === 'gaussian:0.5'",
                               timeout=30_000)
        assert page.evaluate("() => new URLSearchParams(location.search).get('model')") == "shipped:denoising_ae"
        page.get_by_text("Denoising AE z=32").first.wait_for(timeout=10_000)  # the page's caption names it
        page.close()
    finally:
        server.stop()


def test_a_lab_section_tab_is_in_the_url_and_a_reload_keeps_it(browser):
    """The Labs' sections are tabs bound to the URL: a click opens one (and only it runs), a reload or a shared link
    comes back to it."""
    server = Server()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{server.url}/checkerboard")
        settle(page)
        page.get_by_role("tab", name="3. Random decoders").click()
        page.get_by_role("heading", name="3 · Random decoders: the pattern before training").wait_for(timeout=60_000)
        settle(page)
        page.wait_for_function("() => new URLSearchParams(location.search).get('cbtab') === '3. Random decoders'",
                               timeout=30_000)
        assert page.get_by_role("heading", name="1 · The arithmetic of a transposed convolution").count() == 0
        page.reload()
        page.get_by_role("heading", name="3 · Random decoders: the pattern before training").wait_for(timeout=60_000)
        settle(page)
        assert_in_frame(page, "Checkerboard Lab")
        page.close()
    finally:
        server.stop()


def test_no_page_or_section_makes_plotly_warn_or_draw_twice(browser):
    """plotly.js logs a console stack trace for every attribute it has to ignore or repair (an unknown colour, a scale
    anchor on a matched axis): ~2 ms each in the browser, and 420 of them made one Lab section 1 s slower. And it
    draws a figure again whenever it must grow a margin to fit the labels (aecore.viz.room). Every page and every tab
    of the sectioned pages is opened: the console must carry no plotly warning, and no figure may need more than
    10 px more margin than it set (the slack: font metrics differ between machines)."""
    server = Server()
    warnings: list[str] = []
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("console", lambda m: warnings.append(m.text[:160]) if m.text.startswith("WARN:") else None)
        for path, (_, title) in PAGES.items():
            page.goto(f"{server.url}/{path}")
            settle(page)
            assert_in_frame(page, title)
            page.wait_for_timeout(500)  # charts draw after the script has finished
            assert not page.evaluate(PUSHED), f"{path or 'home'}: {page.evaluate(PUSHED)}"
            for i in range(page.get_by_role("tab").count()):
                tab = page.get_by_role("tab").nth(i)
                name = tab.inner_text()
                tab.click()
                number = name.split(".")[0]
                page.get_by_role("heading", name=re.compile(rf"^{number} · ")).first.wait_for(timeout=120_000)
                settle(page, 300_000)
                page.wait_for_timeout(500)
                assert not warnings, f"{path or 'home'} / {name}: {sorted(set(warnings))[:5]}"
                assert not page.evaluate(PUSHED), f"{path or 'home'} / {name}: {page.evaluate(PUSHED)}"
            assert not warnings, f"{path or 'home'}: {sorted(set(warnings))[:5]}"
        page.close()
    finally:
        server.stop()
