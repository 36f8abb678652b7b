"""AppTest: every page renders; a run started on Train finishes and reaches the other pages; bad uploads get
a message. Real models, real data, no mocks."""
import json
import io
import time

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from apptest import each_section, follow_link, open_link, query
from waiting import wait_for

from ui.state import shipped_models

PAGES = ["pages/home.py", "pages/train.py", "pages/reconstruct.py", "pages/latent.py", "pages/checkerboard.py",
         "pages/evaluation.py", "pages/inside.py"]
APP = "../app.py"  # AppTest resolves relative paths against this file


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def widget(elements, label):
    return next(e for e in elements if e.label == label)


def problems(at):
    return [e.value for e in at.exception] + [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_defaults(page):
    at = new_app()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, "each page has a title"


def test_no_page_or_section_imports_torch_dynamo():
    """torch._dynamo (with triton) is ~150 MB of the app server's 1 GB; torchvision and any torch.optim optimizer
    import it (and sympy, 35 MB, comes with `tensor.backward(gradient)`). Every page and every section, in one fresh
    process, as one visitor would open them."""
    import os
    import subprocess
    import sys

    code = ("import sys\nsys.path.insert(0, 'tests')\nfrom streamlit.testing.v1 import AppTest\n"
            "from apptest import each_section\n"
            f"for page in {PAGES!r}:\n"
            "    at = AppTest.from_file('app.py', default_timeout=300)\n    at.run()\n    at.switch_page(page)\n"
            "    at.run()\n    assert not at.exception, (page, [e.value for e in at.exception])\n"
            "    for _ in each_section(at, page):\n        assert not at.exception, page\n"
            "print(sorted(m for m in ('torch._dynamo', 'torchvision', 'triton', 'sympy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_legacy_router_guard_engages_on_this_streamlit():
    """ui/widgets.legacy_router() guards the app's one private Streamlit use. On the pinned Streamlit it must engage:
    if an upgrade renamed the flag, the guard would quietly fall back and this test says so."""
    from streamlit.runtime.pages_manager import PagesManager

    from ui.widgets import legacy_router

    assert legacy_router() is PagesManager


def train_quick_model(at, model="linear_ae", epochs=2, timeout=120):
    at.switch_page("pages/train.py")
    at.run()
    widget(at.selectbox, "Model").set_value(model)
    at.run()
    widget(at.select_slider, "Epochs").set_value(epochs)
    at.run()
    widget(at.button, "Start").click()
    at.run()
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.5)
        at.run()
        ready = any("Model ready" in s.value for s in at.success)
        if (ready and at.dataframe) or problems(at):  # the test metrics follow the model by a few seconds
            break
    return at


@pytest.fixture(scope="module")
def trained_app():
    return train_quick_model(new_app())


def test_a_run_started_on_train_finishes_with_live_chart_and_results(trained_app):
    at = trained_app
    assert not problems(at)
    assert any("Model ready" in s.value for s in at.success)
    assert at.get("plotly_chart"), "the loss chart is shown"
    assert any(d.label == "Download checkpoint" for d in at.get("download_button"))
    assert at.dataframe, "the final metrics table is shown"
    assert any(e.label == "How it learned: the run's time-lapse" for e in at.expander)
    codes = next(c for c in at.get("plotly_chart") if "epoch by epoch" in c.proto.spec)
    assert [f["name"] for f in json.loads(codes.proto.spec)["frames"]] == ["1", "2"], "a frame per epoch"


def test_the_trained_model_reaches_reconstruct_and_latent(trained_app):
    at = trained_app
    at.switch_page("pages/reconstruct.py")
    at.run()
    picker = widget(at.selectbox, "Model")
    assert "(trained)" in picker.options[0] and "Linear AE" in picker.options[0]
    assert not problems(at)
    assert any("PSNR" in m.label for m in at.metric)
    at.switch_page("pages/latent.py")
    at.run()
    assert not problems(at)
    probe = next(m for m in at.metric if m.label == "Latent probe accuracy")
    assert float(probe.value.rstrip("%")) > 20  # well above chance (10 %) even after 2 epochs


def test_bad_image_upload_gives_a_message_not_an_exception(trained_app):
    at = trained_app
    at.switch_page("pages/reconstruct.py")
    at.run()
    png = io.BytesIO()
    Image.new("RGB", (50, 40), (255, 255, 255)).save(png, format="PNG")
    uploader = widget(at.file_uploader, "Your pictures: PNG, JPG, WEBP, GIF or BMP, colour or grey")
    uploader.set_value([("broken.png", b"this is not a picture", "image/png"), ("ok.png", png.getvalue(), "image/png")])
    at.run()
    assert not at.exception
    assert any("broken.png" in e.value and "not a readable" in e.value for e in at.error)
    assert any("as converted" in m.value for m in at.markdown), "the good file is still shown"


def test_bad_checkpoint_upload_gives_a_message(trained_app):
    at = trained_app
    uploader = widget(at.file_uploader, "aecore checkpoint (.pt)")
    uploader.set_value(("model.pt", b"\x00garbage", "application/octet-stream"))
    at.run()
    assert not at.exception
    assert any("not a readable aecore checkpoint" in e.value for e in at.error)


def start_long_run() -> AppTest:
    """A fresh session that has started a 20-epoch conv AE run on the Train page."""
    at = new_app()
    at.switch_page("pages/train.py")
    at.run()
    widget(at.selectbox, "Model").set_value("conv_ae")
    at.run()
    widget(at.select_slider, "Epochs").set_value(20)
    at.run()
    widget(at.button, "Start").click()
    at.run()
    return at


def test_stop_ends_a_run_within_moments():
    at = start_long_run()
    assert wait_for(lambda: at.session_state["run"].job.snapshot().step >= 2)
    at.run()
    snap = at.session_state["run"].job.snapshot()
    assert "Stop" in [b.label for b in at.button], (snap.status, snap.error, [b.label for b in at.button])
    widget(at.button, "Stop").click()
    at.run()
    stopping = [b for b in at.button if b.label == "Stopping…"]
    ready = any("Model ready (stopped" in s.value for s in at.success)
    assert ready or (stopping and stopping[0].disabled), "a visible Stopping… state until the result is in"
    stopped = time.monotonic()
    for _ in range(40):
        time.sleep(0.25)
        at.run()
        if any("Model ready (stopped" in s.value for s in at.success):
            break
    assert any("Model ready (stopped" in s.value for s in at.success), [s.value for s in at.success]
    assert time.monotonic() - stopped < 10  # the bar is 3 s; AppTest's own reruns take some of it


def test_a_reload_gets_the_running_run_back_by_the_id_in_the_url():
    at = start_long_run()
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    reloaded = AppTest.from_file(APP, default_timeout=120)  # a new browser session, same URL
    reloaded.query_params["run"] = run_id
    reloaded.switch_page("pages/train.py")
    reloaded.run()
    assert not problems(reloaded)
    assert any("Training Conv AE" in i.value for i in reloaded.info), "the run is shown again"
    assert wait_for(lambda: reloaded.session_state["run"].job.snapshot().step >= 2)
    widget(reloaded.button, "Stop").click()  # and can be stopped from there
    reloaded.run()
    for _ in range(60):
        time.sleep(0.25)
        reloaded.run()
        if any("Model ready (stopped" in s.value for s in reloaded.success):
            break
    assert any("Model ready (stopped" in s.value for s in reloaded.success)


def test_every_page_shows_the_running_run_in_its_sidebar():
    at = start_long_run()
    run = at.session_state["run"]
    try:
        for page in ("pages/home.py", "pages/latent.py"):
            at.switch_page(page)
            at.run()
            assert not problems(at)
            texts = [p.proto.text for p in at.sidebar.get("progress")]
            assert any(t.startswith("Training: epoch") for t in texts), texts
            assert any(link.proto.page == "train" for link in at.sidebar.get("page_link"))
    finally:
        run.request_stop()
        run.job.join(30)


def test_session_state_is_kept_only_through_ui_session():
    """Every key the app keeps per visitor has one typed accessor in ui/session.py; a string key anywhere else is a
    second, unchecked name for it (how the sidebar once read "job", which nothing wrote)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    raw = re.compile(r"session_state(\[\s*['\"]|\.(get|setdefault|pop|update)\(|\s*\.\s*\w+\s*=)"
                     r"|['\"]\w+['\"]\s+(not )?in st\.session_state")
    offenders = [f"{path.relative_to(root)}:{n}" for path in [root / "app.py", *root.glob("pages/*.py"),
                                                              *root.glob("ui/**/*.py")]
                 if path.name != "session.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if raw.search(line)]
    assert not offenders, offenders


def test_switching_models_applies_the_new_models_own_defaults():
    """A link's settings belong to the model it names: choosing another model must not carry z, noise or epochs
    over (a Denoising AE once trained with no noise because the Conv VAE's "none" was still in the URL)."""
    at = new_app()
    at.switch_page("pages/train.py")
    at.run()
    switches = (("denoising_ae", 32, "gaussian", 0.5, 2), ("conv_vae", 2, "none", 0.5, 12),
                ("sparse_ae", 64, "none", 0.5, 10))
    for model, latent, noise, level, epochs in switches:
        widget(at.selectbox, "Model").set_value(model)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert widget(at.number_input, "Latent size (z)").value == latent, model
        assert widget(at.selectbox, "Input noise (denoising)").value == noise, model
        assert widget(at.slider, "Noise level").value == level, model
        assert widget(at.select_slider, "Epochs").value == epochs, model
        assert (query(at, "preset"), query(at, "latent")) == (model, str(latent))
    assert widget(at.number_input, "Sparsity (L1 weight on the code)").value == 0.05


def test_a_train_link_reproduces_every_setting():
    link = {"preset": "beta_vae", "dataset": "mnist-5k", "latent": "6", "epochs": "3", "batch": "64", "lr": "0.002",
            "sched": "constant", "noise": "salt_pepper:0.2", "seed": "7", "beta": "2.5", "sparsity": "0.01",
            "upsample": "bilinear", "best": "1", "loss": "as_written"}
    at = open_link("pages/train.py", link)
    assert not at.exception, [e.value for e in at.exception]
    assert widget(at.number_input, "Latent size (z)").value == 6
    assert widget(at.select_slider, "Epochs").value == 3 and widget(at.select_slider, "Batch size").value == 64
    assert widget(at.select_slider, "Learning rate").value == 0.002
    assert widget(at.toggle, "Cosine learning-rate decay").value is False
    assert widget(at.toggle, "Keep the best epoch").value is True
    assert widget(at.number_input, "beta (KL weight)").value == 2.5
    assert widget(at.selectbox, "Decoder upsampling").value == "bilinear"
    assert widget(at.toggle, "Loss as written in the lecture").value is True
    assert {k: query(at, k) for k in link} == link


def test_reconstruct_opens_on_denoising_and_a_new_model_brings_its_own_noise():
    at = new_app()
    at.switch_page("pages/reconstruct.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert widget(at.selectbox, "Model").value == "shipped:denoising_ae"
    assert widget(at.selectbox, "Noise on the input").value == "gaussian"
    assert widget(at.slider, "Noise level").value == 0.5
    assert widget(at.selectbox, "Compare with (same image shape)").value == "shipped:conv_ae"
    widget(at.selectbox, "Model").set_value("shipped:conv_vae_z2")
    at.run()
    assert widget(at.selectbox, "Noise on the input").value == "none"  # its own training noise, not the last view's
    assert widget(at.selectbox, "Compare with (same image shape)").value is None
    assert query(at, "noise") == "none"


def test_a_reconstruct_link_reproduces_the_view():
    link = {"model": "shipped:conv_ae", "n": "6", "seed": "3", "noise": "salt_pepper:0.2", "idx": "0, 7, 42",
            "cmp": "shipped:denoising_ae"}
    at = open_link("pages/reconstruct.py", link)
    assert not at.exception, [e.value for e in at.exception]
    assert widget(at.selectbox, "Noise on the input").value == "salt_pepper"
    assert widget(at.selectbox, "Compare with (same image shape)").value == "shipped:denoising_ae"
    assert widget(at.text_input, "Or pick test images by index (comma-separated)").value == "0, 7, 42"
    assert {k: query(at, k) for k in link} == link


def test_latent_starts_each_model_from_its_own_view_and_links_keep_it():
    link = {"model": "shipped:conv_vae_z2", "seed": "5", "grid": "9", "samples": "8", "a": "3", "b": "17",
            "steps": "5"}
    at = open_link("pages/latent.py", link)
    assert not at.exception, [e.value for e in at.exception]
    assert widget(at.slider, "Manifold grid size").value == 9 and widget(at.slider, "Steps").value == 5
    assert widget(at.number_input, "To test image").value == 17
    assert {k: query(at, k) for k in link} == {**link}
    widget(at.selectbox, "Model").set_value("shipped:conv_vae_z20")  # 20-D: PCA, not the 2-D view's raw dims
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert widget(at.radio, "Projection").value == "pca"
    widget(at.selectbox, "Model").set_value("shipped:conv_ae")  # a plain AE: says why nothing is generated
    at.run()
    assert any("no prior to sample from" in i.value for i in at.info)


@pytest.mark.parametrize("number", range(1, 8))
def test_each_guided_step_opens_its_page_with_its_settings(number):
    from ui.guide import STEPS

    step = STEPS[number - 1]
    at = new_app()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value.startswith(f"{number} · ") for s in at.subheader)
    follow_link(at, step.page, step.query)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    for k, v in step.query.items():  # the page took the step's settings (and keeps them in its URL)
        assert query(at, k) == v, (k, query(at, k), v)
    tab = next((v for k, v in step.query.items() if k.endswith("tab")), None)
    if tab:  # a Lab step opens the section it talks about
        assert [h.value.split(" · ")[0] for h in at.header] == [tab.split(".")[0]]


def test_a_guided_link_wins_over_the_model_picked_before():
    at = new_app()
    at.switch_page("pages/reconstruct.py")
    at.run()
    widget(at.selectbox, "Model").set_value("shipped:conv_vae_z2")
    at.run()
    at.switch_page("pages/home.py")
    at.run()
    at.query_params["model"] = "shipped:conv_ae"  # what step 1's link carries
    at.switch_page("pages/reconstruct.py")
    at.run()
    assert widget(at.selectbox, "Model").value == "shipped:conv_ae"


def test_inside_the_models_compares_code_sizes_with_the_numbers_they_were_built_with():
    from ui.sizes import SIZES

    at = open_link("pages/inside.py", {"zseed": "3", "intab": "8. Code size"})
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "code size z" in d.value.columns)
    assert table["code size z"].tolist() == [int(n.split("_z")[1]) for n in SIZES]
    elbo = table["-ELBO (nats)"].tolist()
    assert elbo[0] > elbo[-1]  # a 20-number code keeps more of each digit than a 2-number one
    assert query(at, "zseed") == "3"


def test_inside_the_models_plays_a_shipped_run_epoch_by_epoch():
    at = open_link("pages/inside.py", {"model": "shipped:talk_vae"})
    assert not at.exception, [e.value for e in at.exception]
    tl = shipped_models()["shipped:talk_vae"].checkpoint.timelapse
    epochs = [str(e) for e in tl.epochs.tolist()]
    assert len(epochs) > 5 and epochs[0] == "1"
    codes = json.loads(next(c for c in at.get("plotly_chart") if "epoch by epoch" in c.proto.spec).proto.spec)
    assert [f["name"] for f in codes["frames"]] == epochs
    assert codes["layout"]["sliders"][0]["active"] == len(epochs) - 1, "opens on the last epoch"
    shown = " ".join(m.value for m in at.markdown)
    assert "Reconstructions, epoch by epoch" in shown and "the same 16 random codes decoded" in shown


def test_an_overcomplete_code_lets_more_noise_through_than_a_bottleneck():
    at = open_link("pages/inside.py", {"intab": "7. Overcomplete"})
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "noise let through (%)" in d.value.columns)
    small, big = table.to_dict("records")
    assert (small["code size"], big["code size"]) == (16, 128)
    # measured on the shipped pair: 57 % vs 81 % of the noise, 21.1 vs 28.9 dB on clean digits
    assert big["noise let through (%)"] > small["noise let through (%)"] + 10
    assert big["clean digits: PSNR (dB)"] > small["clean digits: PSNR (dB)"] + 3
    assert any("lets" in c.value and "of the noise through" in c.value for c in at.caption)


def test_inside_the_models_draws_a_2d_vae_s_codes_as_clouds():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["model"] = "shipped:conv_vae_z2"
    at.query_params["intab"] = "3. Point or cloud"
    at.switch_page("pages/inside.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("gives each image a distribution" in c.value for c in at.caption)


@pytest.mark.parametrize("model", ["shipped:beta_vae", "shipped:denoising_ae", "shipped:linear_ae"])
def test_inside_the_models_shows_every_section_or_says_why_not(model):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["model"] = model
    at.query_params["tdigit"] = "5"
    at.switch_page("pages/inside.py")
    at.run()
    headers, notes, digit = [], [], None
    for _ in each_section(at, "pages/inside.py"):  # sections are tabs: open each in turn
        assert not at.exception, [e.value for e in at.exception]
        headers += [h.value for h in at.header]
        notes += [i.value for i in at.info]
        digit = digit or next((n for n in at.number_input if n.label == "Start from test digit"), None)
    assert len(headers) == 8
    notes = " ".join(notes)
    assert ("no time-lapse" in notes) == (model != "shipped:denoising_ae")  # rebuilt with one
    assert "needs a 2-number code" in notes  # none of these three has a 2-D code
    assert ("no prior to sweep" in notes) == (model != "shipped:beta_vae")
    assert ("no convolution" in notes) == (model == "shipped:linear_ae")
    if model == "shipped:beta_vae":
        assert digit.value == 5 and query(at, "tdigit") == "5"


def test_a_model_name_too_long_for_the_sidebar_box_is_written_out_below_it():
    at = open_link("pages/inside.py", {"model": "shipped:talk_vae"})  # "The talk's MLP VAE z=20 · mnist-5k"
    label = widget(at.sidebar.selectbox, "Model").format_func("shipped:talk_vae")
    from ui.text import plain  # markdown-escaped: a name from an uploaded file renders as text

    assert len(label) > 30 and plain(label) in [c.value for c in at.sidebar.caption]
    short = open_link("pages/inside.py", {"model": "shipped:conv_vae_z2"})  # "Conv VAE z=2 · mnist-5k": fits
    assert not any("Conv VAE z=2" in c.value for c in short.sidebar.caption)
