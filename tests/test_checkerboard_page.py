"""Checkerboard Lab: the page renders (defaults, extreme and illegal settings), its figures are labelled, the inline
training completes a comparison set, and the pure helpers it adds to aecore.checkerboard are right.
Real code throughout: AppTest runs app.py, models are real, nothing is mocked."""
import base64
import json
import math

import numpy as np
import time

import pytest
import torch
import torch.nn.functional as F
from apptest import open_link, open_tab, query
from streamlit.testing.v1 import AppTest

from aecore import checkerboard as cb
from aecore.catalog import get_preset
from aecore.checkpoints import Checkpoint
from aecore.models import UPSAMPLE_MODES, build_model

APP = "../app.py"  # AppTest resolves relative paths against this file
PAGE = "pages/checkerboard.py"
TABS = ["1. Arithmetic", "2. Overlaps", "3. Random decoders", "4. Trained decoders"]  # only the open one runs


def open_page(tab: int = 1) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(PAGE)
    at.run()
    return open_tab(at, "cbtab", TABS[tab - 1]) if tab != 1 else at


def figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def figure(at, title_start: str) -> dict:
    return next(f for f in figures(at) if f["layout"]["title"]["text"].startswith(title_start))


def decode(value) -> np.ndarray:
    """Plotly (>= 6) writes numpy arrays as {"dtype", "bdata" (base64), "shape"}; plain lists stay lists."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if isinstance(shape, str):
            shape = [int(n) for n in shape.split(",")]
        return arr.reshape(shape) if shape else arr
    return np.array(value, dtype=float)


def heatmap_z(fig: dict, index: int) -> np.ndarray:
    return decode([t for t in fig["data"] if t["type"] == "heatmap"][index]["z"]).astype(float)


# ------------------------------------------------------------------------------------------ the page
@pytest.fixture(scope="module")
def default_page():
    return open_page()


@pytest.fixture(scope="module")
def every_tab():
    """One session that opened each section in turn: the AppTest of each, drawn while its tab was open."""
    at = open_page()
    out = {1: figures(at)}
    for number in range(2, len(TABS) + 1):
        out[number] = figures(open_tab(at, "cbtab", TABS[number - 1]))
        assert not at.exception, (number, [e.value for e in at.exception])
    return out


def test_a_visit_runs_only_the_open_section(default_page):
    assert [h.value[:1] for h in default_page.header] == ["1"], "the first tab only"
    assert not any(s.label == "Models compared" for s in default_page.selectbox), "section 4 did not run"


def test_defaults_render_the_lecture_example(default_page):
    at = default_page
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning and not at.error, [w.value for w in at.warning] + [e.value for e in at.error]
    assert at.title[0].value == "Checkerboard Lab"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Input": "6x4", "Zero-inserted": "11x7", "Output": "13x9"}
    code = at.code[0].value
    assert "(H_in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1" in code
    assert "H_out = (6 - 1)*2 - 2*0 + 1*(3 - 1) + 0 + 1 = 13" in code
    assert "W_out = (4 - 1)*2 - 2*0 + 1*(3 - 1) + 0 + 1 = 9" in code
    out = figure(at, "The result")
    np.testing.assert_array_equal(heatmap_z(out, 0), cb.transposed_conv_steps(
        np.arange(1.0, 25).reshape(6, 4), np.ones((3, 3)), 2).output)
    np.testing.assert_array_equal(heatmap_z(out, 1), cb.overlap_map((6, 4), 3, 2))
    texts = [t["text"] for t in out["data"]]
    assert texts[0][0][:3] == ["1", "1", "3"], "integers are written as integers in the cells"
    steps = figure(at, "Steps 1-3")
    assert [heatmap_z(steps, i).shape for i in range(3)] == [(6, 4), (11, 7), (15, 11)]


def test_every_figure_has_title_axis_titles_and_colour_bar_titles(every_tab):
    figs = [f for tab in every_tab.values() for f in tab]
    assert len(figs) >= 6 and all(every_tab.values()), {k: len(v) for k, v in every_tab.items()}
    for fig in figs:
        layout = fig["layout"]
        assert layout["title"]["text"]
        xs = [v for k, v in layout.items() if k.startswith("xaxis")]
        ys = [v for k, v in layout.items() if k.startswith("yaxis")]
        assert any(x.get("title", {}).get("text") for x in xs), layout["title"]
        assert any(y.get("title", {}).get("text") for y in ys), layout["title"]
        unit = "pixel" in json.dumps(xs) or "cycles/pixel" in json.dumps(xs)
        assert unit, f"x axis has a unit: {layout['title']}"
        bars = [v["colorbar"] for k, v in layout.items() if k.startswith("coloraxis")]
        coloured = any("coloraxis" in t or t.get("type") == "heatmap" for t in fig["data"])  # values as colours
        assert all(b["title"]["text"] for b in bars) and (bars or not coloured), layout["title"]


def test_image_panels_share_zoom(default_page):
    out = figure(default_page, "The result")["layout"]
    assert out["xaxis2"]["matches"] == "x" and out["yaxis2"]["matches"] == "y"
    spectra = figure(open_page(3), "Mean power spectrum")["layout"]
    assert spectra["xaxis3"]["matches"] == "x" and spectra["xaxis"]["title"]["text"].endswith("(cycles/pixel)")


def test_distill_section_scores_transposed_above_resize():
    at = open_page(3)
    table = next(df.value for df in at.dataframe if "decoder" in df.value.columns)
    scores = dict(zip(table["decoder"], table["artifact score"]))
    assert scores["deconv_last_two"] > scores["resize_all"] + 1 and scores["deconv_last"] > scores["resize_all"] + 1


def test_reseed_and_constant_latent_change_the_outputs():
    at = open_page(3)
    before = figure(at, "Mean power spectrum")
    next(b for b in at.button if b.label == "Reseed").click()
    at.run()
    assert at.session_state["cb_seed"] == 1
    assert figure(at, "Mean power spectrum") != before
    at.radio(key="cb_latent").set_value("constant")
    at.run()
    assert not at.exception


EXTREMES = [
    dict(cb_kernel=7, cb_stride=4, cb_padding=0, cb_op=0),                 # max kernel and stride
    dict(cb_kernel=7, cb_stride=4, cb_padding=4, cb_op=3, cb_dilation=3),  # everything at its maximum
    dict(cb_rows=1, cb_cols=1, cb_kernel=1, cb_stride=1),                  # smallest input and kernel
    dict(cb_rows=12, cb_cols=12, cb_kernel=7, cb_stride=4, cb_dilation=3),  # largest maps (no text in cells)
    dict(cb_rows=1, cb_cols=12, cb_stride=3, cb_op=2),                     # 1-pixel-high input
]


@pytest.mark.parametrize("values", EXTREMES)
def test_extreme_legal_settings_render(values):
    at = open_page()
    for key, value in values.items():
        at.slider(key=key).set_value(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning, [w.value for w in at.warning]
    expected = cb.transposed_output_size(at.session_state["cb_rows"], at.session_state["cb_kernel"],
                                         at.session_state["cb_stride"], at.session_state["cb_padding"],
                                         at.session_state["cb_op"], at.session_state["cb_dilation"])
    assert next(m.value for m in at.metric if m.label == "Output").startswith(f"{expected}x")


ILLEGAL = [
    (dict(cb_stride=2, cb_op=3), "Output padding 3", "0, 1"),                  # output_padding >= stride
    (dict(cb_stride=1, cb_op=1), "Output padding 1", "legal values are 0"),   # stride 1: only 0
    (dict(cb_rows=1, cb_cols=1, cb_kernel=1, cb_stride=1, cb_padding=4), "Padding 4", "at most 0"),
    (dict(cb_rows=1, cb_cols=1, cb_kernel=1, cb_padding=4, cb_op=3), "Output padding 3", "Padding 4"),
]


@pytest.mark.parametrize("values,first,second", ILLEGAL)
def test_illegal_settings_warn_with_what_is_legal(values, first, second):
    at = open_page()
    for key, value in values.items():
        at.slider(key=key).set_value(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(w.value for w in at.warning)
    assert first in text and second in text, text
    assert not any(f["layout"]["title"]["text"].startswith("Steps") for f in figures(at))
    assert not at.metric, "no sizes are claimed for an illegal combination"
    assert "H_out = " in at.code[0].value, "the formula still shows what the numbers give"


def test_stamping_preset_gives_the_lecture_result():
    at = open_page()
    at.selectbox(key="cb_input").set_value("lecture_stamp")
    at.run()
    assert not at.exception and not at.warning
    assert at.slider(key="cb_stride").value == 1 and at.slider(key="cb_kernel").disabled
    np.testing.assert_array_equal(heatmap_z(figure(at, "The result"), 0), [[7, 10, 0], [21, 30, 0], [14, 20, 0]])
    at.selectbox(key="cb_input").set_value("random")
    at.run()
    assert not at.exception and not at.warning


def test_stacking_selector_covers_its_whole_range():
    at = open_page(2)
    for kernel in (2, 5):
        for stride in (1, 3):
            at.select_slider(key="cb_stack_kernel").set_value(kernel)
            at.select_slider(key="cb_stack_stride").set_value(stride)
            at.run()
            assert not at.exception, (kernel, stride)
            table = next(df.value for df in at.dataframe if "layers" in df.value.columns)
            assert list(table["layers"]) == [1, 2, 3]


def test_trained_section_opens_on_the_shipped_set_that_shows_the_pattern():
    at = open_page(4)
    sel = next(s for s in at.selectbox if s.label == "Models compared")
    shown = sel.options[sel.index]
    assert "Narrow conv AE z=8" in shown and "5 of 5 upsamplings" in shown, shown
    table = next(df.value for df in at.dataframe if "upsampling" in df.value.columns)
    scores = dict(zip(table["upsampling"], table["artifact score"]))
    # the punchline on the first visit: the lecture's transposed k3 decoder leaves the period-2 pattern, a resize
    # decoder does not (the shipped models measure 2.2 and 0.0; training hides the pattern only slowly)
    assert scores["transposed"] > 1.0 and scores["nearest"] < 0.3 and scores["bilinear"] < 0.3, scores
    assert not any(b.key == "cb_train_here" for b in at.button), "nothing to train: the set is complete"


def test_the_compared_set_is_in_the_url_and_a_link_brings_it_back():
    at = open_page(4)
    first = query(at, "cbset")
    sel = next(s for s in at.selectbox if s.label == "Models compared")
    vae = next(o for o in sel.options if "Conv VAE z=2" in o and "5 of 5" in o)
    sel.set_value(vae)
    at.run()
    linked = query(at, "cbset")
    assert first and linked and linked != first and len(linked) == 8
    back = open_link(PAGE, {"cbset": linked, "cbtab": TABS[3]})
    sel = next(s for s in back.selectbox if s.label == "Models compared")
    assert sel.options[sel.index] == vae and not back.warning
    stale = open_link(PAGE, {"cbset": "0badc0de", "cbtab": TABS[3]})
    assert any("not on this server" in w.value for w in stale.warning)
    sel = next(s for s in stale.selectbox if s.label == "Models compared")
    assert "Narrow conv AE z=8" in sel.options[sel.index] and not stale.exception


def test_an_incomplete_set_offers_the_train_page_and_the_complete_set():
    at = open_page(4)
    sel = next(s for s in at.selectbox if s.label == "Models compared")
    sel.set_value(next(o for o in sel.options if "Conv AE z=32" in o and "1 of 5" in o))  # the shipped conv AE
    at.run()
    (link,) = at.get("page_link")
    assert link.proto.page == "train"
    query = dict(kv.split("=") for kv in link.proto.query_string.split("&"))
    assert {"preset", "dataset", "latent", "epochs", "seed", "upsample"} <= set(query)
    assert query["upsample"] in UPSAMPLE_MODES and query["upsample"] != "transposed"
    show = next(b for b in at.button if b.key == "cb_to_quick")
    show.click()
    at.run()
    sel = next(s for s in at.selectbox if s.label == "Models compared")
    assert "Narrow conv AE z=8" in sel.options[sel.index]


def test_training_the_missing_set_here_fills_the_comparison(monkeypatch):
    from ui.checkerboard import quick_train as view
    from ui.checkerboard import trained
    from ui.state import all_models

    monkeypatch.setattr(view, "QUICK_MAX_STEPS", 2)  # the same flow, 2 optimiser steps per model
    # as on a server without the shipped set (checkpoints/ of an older release, or its files removed)
    monkeypatch.setattr(trained, "all_models", lambda: {k: e for k, e in all_models().items()
                                                        if not k.startswith("shipped:conv_ae_narrow")})
    at = open_page(4)
    # one click, whichever set is on screen: "Train the missing 5 here" or "Or train a complete set of 5 here"
    next(b for b in at.button if b.key == "cb_train_here" and " 5 here" in b.label).click()
    at.run()
    assert at.session_state["cb_quick"]["todo"], "training runs in the background: the page is drawn at once"
    assert any(b.key == "cb_quick_cancel" for b in at.button), "with a way to cancel"
    deadline = time.monotonic() + 300
    while at.session_state["cb_quick"] and time.monotonic() < deadline:  # what the progress fragment's polls do
        time.sleep(0.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    models = at.session_state["models"]
    assert sorted(e.checkpoint.spec.upsample for e in models.values()) == sorted(UPSAMPLE_MODES)
    sel = next(s for s in at.selectbox if s.label == "Models compared")
    shown = sel.options[sel.index]
    assert "5 of 5 upsamplings" in shown and "Narrow conv AE z=8" in shown and "batch 32" in shown, shown
    table = next(df.value for df in at.dataframe if "upsampling" in df.value.columns)
    assert list(table["upsampling"]) == list(UPSAMPLE_MODES)
    assert (table["artifact score"] >= 0).all() and table["PSNR (dB)"].notna().all()
    assert not any(b.label.startswith("Train the missing") for b in at.button)
    diff = figure(at, "Output − original")
    assert len([t for t in diff["data"] if t["type"] == "heatmap"]) == 5
    assert diff["layout"]["coloraxis"]["cmin"] == -diff["layout"]["coloraxis"]["cmax"], "diverging, centred on 0"
    spectra = figure(at, "Mean power spectrum of the outputs, 100")
    assert all(spectra["layout"][f"xaxis{i}"]["matches"] == "x" for i in range(2, 6))
    at.radio(key="cb_spec_of").set_value("difference")
    at.radio(key="cb_crop_at").set_value("corner")
    at.slider(key="cb_pick").set_value(8)
    at.number_input(key="cb_first").set_value(992)  # the last 8 test images
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert figure(at, "Mean power spectrum of the differences")
    assert any("rows 0–13, columns 0–13" in m.value for m in at.markdown), "the corner close-up"


# ------------------------------------------------------------------------ pure helpers (aecore)
def test_output_size_formula_substitutes_the_numbers():
    assert cb.output_size_formula(6, 3, 2) == "(6 - 1)*2 - 2*0 + 1*(3 - 1) + 0 + 1 = 13"
    assert cb.output_size_formula(14, 4, 2, 1, 0, 1).endswith("= 28")
    assert cb.output_size_formula(1, 1, 1, 4).endswith("= -7")  # shown even when illegal
    for args in [(5, 3, 2, 1, 1, 1), (7, 4, 3, 0, 2, 2), (2, 2, 1, 0, 0, 1)]:
        assert cb.output_size_formula(*args).endswith(f"= {cb.transposed_output_size(*args)}")


def test_max_legal_padding_is_the_largest_that_works():
    for n, k, s, op, d in [(1, 1, 1, 0, 1), (6, 3, 2, 0, 1), (4, 5, 3, 2, 2), (2, 2, 1, 0, 3)]:
        top = cb.max_legal_padding(n, k, s, op, d)
        assert cb.transposed_output_size(n, k, s, top, op, d) >= 1
        with pytest.raises(ValueError):
            cb.transposed_output_size(n, k, s, top + 1, op, d)


def test_parameter_problems_say_what_is_legal():
    assert cb.parameter_problems((6, 4), (3, 3), 2, 0, 1, 1) == []
    assert cb.parameter_problems((6, 4), (3, 3), 1, 0, 1, 2) == []  # dilation 2 allows output_padding 1
    (op,) = cb.parameter_problems((6, 4), (3, 3), 2, 0, 2, 1)
    assert "Output padding 2" in op and "0, 1" in op
    (pad,) = cb.parameter_problems((1, 5), (1, 1), 1, 1, 0, 1)
    assert "Padding 1" in pad and "height" in pad and "at most 0" in pad
    both = cb.parameter_problems((1, 1), (1, 1), 1, 4, 3, 1)
    assert len(both) == 2 and "Output padding 3" in both[0] and "Padding 4" in both[1]
    assert "even with output padding 0" in both[1]  # the padding is judged with the largest legal value
    # agrees with transposed_output_size on a grid: no problems exactly when both axes are legal
    for n, k, s, p, op, d in np.ndindex(3, 4, 3, 4, 3, 3):
        n, k, s, d = n + 1, k + 1, s + 1, d + 1
        legal = True
        try:
            cb.transposed_output_size(n, k, s, p, op, d)
            cb.transposed_output_size(n + 2, k, s, p, op, d)
        except ValueError:
            legal = False
        assert (cb.parameter_problems((n, n + 2), (k, k), s, p, op, d) == []) == legal, (n, k, s, p, op, d)


def test_example_inputs_reproduce_the_lecture():
    x, k = cb.example_input("lecture_6x4")
    steps = cb.transposed_conv_steps(x, k, 2)
    assert x.shape == (6, 4) and steps.zero_inserted.shape == (11, 7) and steps.output.shape == (13, 9)
    x, k = cb.example_input("lecture_stamp", (9, 9), 5)  # fixed: shape and kernel size are ignored
    np.testing.assert_array_equal(cb.transposed_conv_steps(x, k, 1).output, [[7, 10, 0], [21, 30, 0], [14, 20, 0]])
    ones, k = cb.example_input("ones", (3, 5), 3)
    np.testing.assert_array_equal(cb.transposed_conv_steps(ones, k, 2).output, cb.overlap_map((3, 5), 3, 2))
    r1, _ = cb.example_input("random", (4, 4), 3, seed=7)
    r2, _ = cb.example_input("random", (4, 4), 3, seed=7)
    assert np.array_equal(r1, r2) and r1.min() >= 0 and r1.max() <= 9 and np.all(r1 == np.round(r1))
    with pytest.raises(ValueError):
        cb.example_input("nope")


def test_minimal_period():
    assert cb.minimal_period([2, 2, 2]) is None
    assert cb.minimal_period([1, 2, 1, 2, 1]) == 2
    assert cb.minimal_period([1, 3, 2, 3, 1, 3, 2, 3]) == 4
    assert cb.minimal_period([1, 2, 3]) == 3  # too short to repeat


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_overlap_pattern_interior_is_the_infinite_input_pattern(k, s, layers):
    p = cb.overlap_pattern(k, s, layers)
    # reference: a much longer input through conv_transpose1d with all-ones kernels. Both start at input pixel 0,
    # so index j has the same phase in both; inside the margin neither sees a border.
    v = torch.ones(1, 1, 300, dtype=torch.float64)
    for _ in range(layers):
        v = F.conv_transpose1d(v, torch.ones(1, 1, k, dtype=torch.float64), stride=s)
    ref = v[0, 0].numpy().round().astype(int)
    assert p.start == cb.border_margin(k, s, layers) and p.stop == len(p.profile) - p.start
    np.testing.assert_array_equal(p.interior, ref[p.start: p.stop])
    np.testing.assert_array_equal(p.profile, _tconv_ones_1d(len(p.profile), k, s, layers))
    period = s**layers  # one input step moves the whole pattern by s^layers output pixels
    assert len(p.interior) >= 4 * period
    if layers == 1:
        assert p.period == cb.pattern_period(k, s)
    assert p.period is None or period % p.period == 0
    assert len(p.cycle) == (p.period or 1)
    assert list(p.profile[p.start + p.phase:][: len(p.cycle)]) == list(p.cycle)
    assert p.has_gaps == (k < s)
    assert p.ratio == (math.inf if k < s else p.interior.max() / p.interior.min())


def _tconv_ones_1d(length_out, k, s, layers):
    """overlap_profile for the input length that gives `length_out` outputs."""
    n_in = (length_out - 1 - cb.border_margin(k, s, layers)) // s**layers + 1
    out = cb.overlap_profile(n_in, k, s, layers)
    assert len(out) == length_out
    return out


def test_overlap_pattern_lecture_cases_and_compounding():
    assert cb.overlap_pattern(3, 2).cycle == (1, 2)
    assert cb.overlap_pattern(4, 2).period is None and cb.overlap_pattern(4, 2).cycle == (2,)
    assert cb.overlap_pattern(3, 1).period is None and cb.overlap_pattern(3, 1).cycle == (3,)
    ratios = [cb.overlap_pattern(3, 2, n).ratio for n in (1, 2, 3)]
    assert ratios == [2.0, 3.0, 5.0]  # stacking makes it worse
    assert [cb.overlap_pattern(3, 2, n).period for n in (1, 2, 3)] == [2, 4, 8]
    assert cb.overlap_pattern(4, 2, 3).period is None  # even stays even


def test_spectrum_for_display_centres_dc_with_cycles_per_pixel_axes():
    i, j = np.mgrid[:16, :16]
    power = cb.artifact_spectrum((-1.0) ** (i + j) + 0.01 * np.sin(i))
    shown, fy, fx = cb.spectrum_for_display(power)
    assert shown.shape == (16, 16) and np.isfinite(shown).all()
    assert fx[0] == -0.5 and fx[8] == 0 and fx[-1] == pytest.approx(0.4375) and np.array_equal(fx, fy)
    assert np.unravel_index(shown.argmax(), shown.shape) == (0, 0)  # Nyquist sits at the corner (-0.5, -0.5)
    assert shown.min() >= np.log10(1e-7 * power.sum()) - 1e-12  # DC (mean removed) is floored, not -inf
    zero, _, _ = cb.spectrum_for_display(np.zeros((4, 4)))
    assert np.isfinite(zero).all()


def test_center_of_mass_crop_stays_inside():
    img = np.zeros((28, 28))
    img[20:24, 2:6] = 1
    top, left = cb.center_of_mass_crop(img, 14)
    assert (top, left) == (14, 0)  # centred on (21.5, 3.5), pushed inside the image
    assert cb.center_of_mass_crop(np.zeros((28, 28)), 14) == (7, 7)  # black: the middle
    assert cb.center_of_mass_crop(torch.ones(1, 1, 8, 8).numpy(), 20) == (0, 0)  # crop larger than the image


def _ckpt(upsample, preset="conv_vae", epochs=2, latent=None, dataset="mnist-5k"):
    p = get_preset(preset)
    model = build_model(p.spec((1, 28, 28), latent, upsample))
    return Checkpoint(model, preset, dataset, p.config(epochs=epochs))


def test_group_by_upsampling_groups_only_models_that_differ_in_upsampling():
    pairs = [(f"a-{m}", _ckpt(m)) for m in UPSAMPLE_MODES]
    pairs += [("b-dup", _ckpt("nearest")),                      # same recipe and mode: first one wins
              ("c-longer", _ckpt("bilinear", epochs=3)),       # trained longer: another set
              ("d-z4", _ckpt("transposed", latent=4)),          # other latent size: another set
              ("e-ae", _ckpt("transposed", preset="conv_ae")),
              ("f-linear", _ckpt("transposed", preset="linear_ae"))]  # not convolutional: left out
    groups = cb.group_by_upsampling(pairs)
    assert len(groups) == 4
    full = groups[0]
    assert full.members == {m: f"a-{m}" for m in UPSAMPLE_MODES} and full.missing(UPSAMPLE_MODES) == []
    assert full.model_name == "conv_vae" and full.dataset == "mnist-5k" and full.spec["latent_dim"] == 2
    assert full.config["epochs"] == 2
    others = {tuple(g.members.values()) for g in groups[1:]}
    assert others == {("c-longer",), ("d-z4",), ("e-ae",)}
    assert groups[1].missing(UPSAMPLE_MODES) == [m for m in UPSAMPLE_MODES if m not in groups[1].members]
    assert cb.comparison_recipe(pairs[-1][1]) is None
    spec = get_preset("conv_vae").spec((1, 28, 28))
    assert cb.recipe_of("conv_vae", "mnist-5k", spec, get_preset("conv_vae").config(epochs=2)) == full.recipe


def test_cell_text_writes_integers_as_integers():
    from ui.checkerboard.figures import cell_text

    assert cell_text(np.array([[1.0, 13.0], [0.0, 100.0]])).tolist() == [["1", "13"], ["0", "100"]]
    assert cell_text(np.array([0.5, 1.25])).tolist() == ["0.5", "1.2"]


LAB_LINK = {"cbin": "random", "cbk": "5", "cbs": "3", "cbp": "1", "cbop": "0", "cbd": "1", "cbh": "7", "cbw": "6",
            "cbseed": "4", "cbsk": "4", "cbss": "3", "cblat": "constant", "cbstretch": "0", "cbrs": "2",
            "cbfirst": "16", "cbpick": "3", "cbcrop": "corner", "cbspec": "difference"}


def test_a_lab_link_reproduces_every_section():
    checks = {1: lambda at: at.selectbox(key="cb_input").value == "random" and [at.slider(key=k).value for k in (
                  "cb_kernel", "cb_stride", "cb_padding", "cb_rows", "cb_cols")] == [5, 3, 1, 7, 6]
                  and at.number_input(key="cb_input_seed").value == 4,
              2: lambda at: (at.select_slider(key="cb_stack_kernel").value,
                             at.select_slider(key="cb_stack_stride").value) == (4, 3),
              3: lambda at: at.radio(key="cb_latent").value == "constant" and not at.toggle(key="cb_stretch").value,
              4: lambda at: at.number_input(key="cb_first").value == 16 and at.slider(key="cb_pick").value == 3
                  and at.radio(key="cb_crop_at").value == "corner" and at.radio(key="cb_spec_of").value == "difference"}
    for number, check in checks.items():
        link = {**LAB_LINK, "cbtab": TABS[number - 1]}
        at = open_link(PAGE, link)
        assert not at.exception, [e.value for e in at.exception]
        assert [h.value[:1] for h in at.header] == [str(number)], "the link opens its section"
        assert check(at), number
        expect = {**link, "cbtab": link["cbtab"] if number > 1 else None}  # the first tab is the default: no param
        assert {k: query(at, k) for k in link} == expect, "the sections not drawn keep their settings in the URL"


@pytest.mark.parametrize("bad", [{"cbk": "99"}, {"cbin": "evil"}, {"cbsk": "7"}, {"cbstretch": "yes"},
                                 {"cbfirst": "-8"}, {"cbrs": "1e99"}, {"cbcrop": "<b>"}])
def test_a_bad_lab_link_falls_back_to_defaults(bad):
    at = open_link(PAGE, bad)
    assert not at.exception, [e.value for e in at.exception]
    assert at.slider(key="cb_kernel").value == 3
    assert open_tab(at, "cbtab", TABS[1]).select_slider(key="cb_stack_kernel").value == 3
    assert open_tab(at, "cbtab", TABS[2]).toggle(key="cb_stretch").value is True
    assert open_tab(at, "cbtab", TABS[3]).number_input(key="cb_first").value == 0
    assert not at.exception, [e.value for e in at.exception]


def test_a_link_to_a_section_that_does_not_exist_opens_the_first():
    at = open_link(PAGE, {"cbtab": "9. <b>nope</b>"})
    assert not at.exception and [h.value[:1] for h in at.header] == ["1"]


def test_a_lab_control_writes_its_value_into_the_url():
    """The round trip above keeps what the link carried; this checks the page writes what the visitor changes, and
    that a section's settings survive a visit to another section (its widgets are not drawn meanwhile)."""
    at = open_link(PAGE, {})
    at.slider(key="cb_kernel").set_value(4).run()
    open_tab(at, "cbtab", TABS[1]).select_slider(key="cb_stack_kernel").set_value(5).run()
    open_tab(at, "cbtab", TABS[2]).radio(key="cb_latent").set_value("constant").run()
    assert not at.exception, [e.value for e in at.exception]
    assert (query(at, "cbsk"), query(at, "cblat"), query(at, "cbk")) == ("5", "constant", "4")
    assert open_tab(at, "cbtab", TABS[0]).slider(key="cb_kernel").value == 4
    assert open_tab(at, "cbtab", TABS[1]).select_slider(key="cb_stack_kernel").value == 5


@pytest.fixture
def warmed():
    """The server's warm-up (started by the app's first run in this process) over before the test counts calls."""
    import threading

    from ui.state import init_runtime

    init_runtime()
    for thread in threading.enumerate():
        if thread.name == "aecore-warm-up":
            thread.join(300)


def test_visitors_share_the_shipped_sets_reconstructions(monkeypatch, warmed):
    """The trained-decoder section's first opening reconstructs 100 images with five models (the 8 shown are among
    them: one pass per model); for the shipped sets
    every visitor gets the same numbers, so the second visitor reuses the first's."""
    from ui.checkerboard import trained

    calls = []
    real = trained.reconstruct_batched
    monkeypatch.setattr(trained, "reconstruct_batched", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    trained._shipped_reconstruction.clear()
    first = open_page(4)
    made = len(calls)
    second = open_page(4)
    assert calls == [100] * 5, calls  # 5 models x the 100 scored images, which hold the 8 shown
    assert len(calls) == made, "once for both visitors"
    table = lambda at: next(df.value for df in at.dataframe if "upsampling" in df.value.columns)  # noqa: E731
    assert table(first).equals(table(second))


def test_after_the_server_warm_up_the_section_opens_without_reconstructing(monkeypatch, warmed):
    """ui.state.warm_up fills the shared cache with the shipped sets' reconstructions: the first visitor's opening of
    section 4 computes none."""
    from ui.checkerboard import trained

    trained._shipped_reconstruction.clear()
    trained.warm_shipped_sets()
    calls = []
    real = trained.reconstruct_batched
    monkeypatch.setattr(trained, "reconstruct_batched", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    at = open_page(4)
    assert not at.exception and calls == [], calls


def test_the_set_trains_on_while_another_section_is_open(monkeypatch):
    """The set trains one model after another, advanced by its progress polls: with another tab open, the polls
    run above the tabs, so the set completes (and its runs keep their heartbeat) without section 4 on screen."""
    from ui.checkerboard import quick_train as view
    from ui.checkerboard import trained
    from ui.state import all_models

    monkeypatch.setattr(view, "QUICK_MAX_STEPS", 2)
    monkeypatch.setattr(trained, "all_models", lambda: {k: e for k, e in all_models().items()
                                                        if not k.startswith("shipped:conv_ae_narrow")})
    at = open_page(4)
    next(b for b in at.button if b.key == "cb_train_here" and " 5 here" in b.label).click()
    at.run()
    open_tab(at, "cbtab", TABS[0])
    assert any("in the background" in c.value for c in at.caption) and any(b.key == "cb_quick_cancel"
                                                                          for b in at.button)
    deadline = time.monotonic() + 300
    while at.session_state["cb_quick"] and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(e.checkpoint.spec.upsample for e in at.session_state["models"].values()) == sorted(UPSAMPLE_MODES)
    assert [h.value[:1] for h in at.header] == ["1"], "still on the section the visitor chose"
