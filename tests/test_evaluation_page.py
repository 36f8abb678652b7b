"""The Evaluation Lab through AppTest: every section renders from a deep link that sets every control, the link's
values reach the widgets and stay in the URL, and the numbers shown are the module's, for the settings linked."""
import pytest
from apptest import each_section, open_link, open_tab, query
from streamlit.testing.v1 import AppTest
from ui.evaluation.ring import DEFAULT_SIZE

pytestmark = pytest.mark.slow

LINK = {"mix": "-3,0;3,0", "mixsd": "0.5", "mixseed": "2", "iwmodel": "shipped:conv_vae_z4", "iwn": "20",
        "iwseed": "1", "pzn": "100", "pzseed": "1", "digit": "3", "memmodel": "shipped:beta_vae", "memn": "200",
        "memseed": "4", "ringn": "500", "ringseed": "3"}
HEADERS = ["1 · What the objective does to the fit", "2 · Log-likelihood is the honest number",
           "3 · Parzen windows mislead", "4 · Pixel distance is not perceptual distance",
           "5 · Memorisation and mode collapse", "6 · From a Gaussian to anything"]


def test_a_deep_link_sets_every_section_and_round_trips():
    at = open_link("pages/evaluation.py", LINK, timeout=300)
    headers, picked, numbers, sliders, captions = [], {}, {}, [], []
    for _ in each_section(at, "pages/evaluation.py"):  # sections are tabs: each reads the link when it opens
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        headers += [h.value for h in at.header]
        picked |= {s.key: s.value for s in at.selectbox}
        numbers |= {n.key: n.value for n in at.number_input}
        sliders += [s.value for s in at.select_slider]
        captions += [c.value for c in at.caption]
        assert {k: query(at, k) for k in LINK} == LINK  # the URL still reproduces the view
    assert headers == HEADERS, "one section per tab, in order"
    assert picked["ev_iwmodel"] == "shipped:conv_vae_z4" and picked["ev_memmodel"] == "shipped:beta_vae"
    assert numbers["ev_digit"] == 3 and numbers["ev_iwseed"] == 1 and numbers["ev_ringseed"] == 3
    assert sorted(sliders) == [20, 100, 200, 500]
    captions = " ".join(captions)
    assert "k-means centroids" in captions and "planted copy" in captions
    # two blobs at (-3, 0) and (3, 0), width 0.5: reverse KL sits on one of them with its width
    from aecore import divergences as dv

    fits = dv.fit_gaussians(dv.Mixture.of([[-3, 0], [3, 0]], 0.5), seed=2)
    assert abs(abs(fits["reverse_kl"].mean[0]) - 3) < 0.1
    assert f"σ = {fits['reverse_kl'].sigma:.2f}" in captions and f"σ = {fits['kl'].sigma:.2f}" in captions


def ring_points(at) -> int:
    import json

    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    ring = next(c for c in charts if "g(z)" in json.dumps(c["layout"].get("annotations", [])))
    x = ring["data"][0]["x"]
    if isinstance(x, dict):  # plotly encodes numpy arrays as typed binary
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]).size
    return len(x)


def test_a_control_redraws_its_section_and_updates_the_url():
    at = AppTest.from_file("../app.py", default_timeout=300)
    at.switch_page("pages/evaluation.py")
    at.run()
    open_tab(at, "evtab", "6. Gaussian to anything")
    assert not at.exception, [e.value for e in at.exception]
    assert ring_points(at) == DEFAULT_SIZE
    ring = next(s for s in at.select_slider if s.label == "Samples" and s.value == DEFAULT_SIZE)
    ring.set_value(500).run()
    assert not at.exception, [e.value for e in at.exception]
    assert query(at, "ringn") == "500" and ring_points(at) == 500
