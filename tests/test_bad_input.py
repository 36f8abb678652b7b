"""Bad input of every kind the adversarial review tried, in variants: crafted checkpoint files, settings from files
and links, deep links through the app. Each gets one clear message: no traceback, nothing allocated first."""
import io
import json
import math
import resource
import zipfile
from pathlib import Path

import pytest
import torch
from apptest import each_section, open_link

from aecore.checkpoints import MAX_INFLATED_BYTES, CheckpointError, load_checkpoint
from aecore.events import History
from aecore.models import ModelSpec, SpecError
from aecore.noise import Noise
from aecore.train import TrainConfig

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "linear_ae.pt"


def payload() -> dict:
    return torch.load(SHIPPED, weights_only=True)


def crafted(edit_meta=None, edit_payload=None) -> bytes:
    """The shipped linear AE with its metadata or top level edited, as file bytes."""
    p = payload()
    if edit_meta:
        meta = json.loads(p["meta"])
        edit_meta(meta)
        p["meta"] = json.dumps(meta)
    if edit_payload:
        edit_payload(p)
    buf = io.BytesIO()
    torch.save(p, buf)
    return buf.getvalue()


def setter(*path, value):
    def edit(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return edit


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


META_CASES = {
    "history is a list": (setter("history", value=[1, 2]), "history"),
    "history is text": (setter("history", value="x"), "history"),
    "history curve is not numbers": (setter("history", "step_loss", value=["a"]), "step_loss"),
    "history train is a list": (setter("history", "train", value=[]), "train"),
    "config is a list": (setter("config", value=[]), "metadata"),
    "eval batch 2.5": (setter("config", "eval_batch_size", value=2.5), "whole number"),
    "eval batch 0": (setter("config", "eval_batch_size", value=0), "evaluation batch size"),
    "eval batch -1": (setter("config", "eval_batch_size", value=-1), "evaluation batch size"),
    "seed -1": (setter("config", "seed", value=-1), "seed"),
    "seed 2**70": (setter("config", "seed", value=2**70), "seed"),
    "noise gaussian:inf": (setter("config", "noise", value="gaussian:inf"), "noise level"),
    "noise a number": (setter("config", "noise", value=5), "noise"),
    "lr as text": (setter("config", "lr", value="0.1"), "lr"),
    "hidden 32000x32000": (setter("spec", "hidden", value=[32000, 32000]), "hidden"),
    "hidden -5": (setter("spec", "hidden", value=[-5]), "hidden"),
    "hidden 8 x 8000": (lambda m: m["spec"].update(family="mlp", hidden=[8000] * 8), "parameters"),
    "input 1e30": (setter("spec", "input_shape", value=[1, 1e30, 28]), "input_shape"),
    "input 4000 cubed": (setter("spec", "input_shape", value=[4000, 4000, 4000]), "input shape"),
    "input two sides": (setter("spec", "input_shape", value=[28, 28]), "input shape"),
    "variational 1": (setter("spec", "variational", value=1), "variational"),
    "latent true": (setter("spec", "latent_dim", value=True), "latent_dim"),
    "spec a string": (setter("spec", value="mlp"), "spec"),
    "metrics a list": (setter("metrics", value=[1]), "metrics"),
    "metric an object": (setter("metrics", "mse", value={"a": 1}), "metric"),
    "extra text": (setter("extra", value="x"), "extra"),
    "name 10k chars": (setter("model_name", value="x" * 10_000), "model_name"),
    "dataset a number": (setter("dataset", value=3), "dataset"),
}


@pytest.mark.parametrize("case", META_CASES)
def test_crafted_metadata_is_refused_with_one_line(case):
    edit, words = META_CASES[case]
    before = peak_rss_mb()
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(crafted(edit_meta=edit), name="crafted.pt")
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
    assert peak_rss_mb() - before < 300, "refused before the model was built"


PAYLOAD_CASES = {
    "version True": (setter("version", value=True), "version True"),
    "version 1.0": (setter("version", value=1.0), "version 1.0"),
    "version '1'": (setter("version", value="1"), "version '1'"),
    "version 2": (setter("version", value=2), "version 2"),
    "unknown key": (setter("bomb", value=torch.zeros(3)), "bomb"),
    "meta not text": (setter("meta", value=torch.zeros(3)), "metadata"),
    "meta a JSON list": (setter("meta", value="[1, 2]"), "metadata"),
    "state not a dict": (setter("state_dict", value=[torch.zeros(3)]), "weights"),
    "state holds text": (lambda p: p["state_dict"].__setitem__("encoder.0.weight", "x"), "weights"),
    "NaN weights": (lambda p: next(iter(p["state_dict"].values())).fill_(math.nan), "NaN"),
    "infinite weights": (lambda p: next(iter(p["state_dict"].values()))[0].fill_(math.inf), "NaN or infinite"),
}


@pytest.mark.parametrize("case", PAYLOAD_CASES)
def test_crafted_payloads_are_refused_with_one_line(case):
    edit, words = PAYLOAD_CASES[case]
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(crafted(edit_payload=edit), name="crafted.pt")
    assert "\n" not in str(info.value)


def test_the_payload_edits_reach_the_file():
    """The cases above are real: an unedited round trip loads (else every refusal could be for another reason)."""
    assert load_checkpoint(crafted(), name="plain.pt").model_name == "linear_ae"


def test_a_deflated_bomb_is_refused_from_the_zip_directory_before_inflating(tmp_path):
    """A small file whose extra member inflates past the limit: refused by its declared size, in little memory."""
    path = tmp_path / "bomb.pt"
    path.write_bytes(SHIPPED.read_bytes())
    chunk, total = bytes(2**20), MAX_INFLATED_BYTES + 2**20
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z, z.open("linear_ae/bomb", "w",
                                                                                  force_zip64=True) as f:
        for _ in range(total // len(chunk)):
            f.write(chunk)
    assert path.stat().st_size < 2 * SHIPPED.stat().st_size, "the file is small; only its contents are large"
    before = peak_rss_mb()
    for source in (path, path.read_bytes()):
        with pytest.raises(CheckpointError, match="inflate"):
            load_checkpoint(source)
    assert peak_rss_mb() - before < 100


@pytest.mark.parametrize("text", ["gaussian:inf", "gaussian:nan", "gaussian:-1", "gaussian:abc", "gaussian:1e9",
                                  "masking:5", "masking:-1", "salt_pepper:1.01", "bogus", "bogus:0.1", ":0.3"])
def test_bad_noise_settings_are_refused(text):
    with pytest.raises(ValueError, match="noise"):
        Noise.parse(text)


@pytest.mark.parametrize("field,value", [("epochs", 0), ("epochs", 2.5), ("epochs", True), ("batch_size", 10**9),
                                         ("eval_batch_size", 0), ("lr", math.nan), ("lr", math.inf), ("lr", -1),
                                         ("beta", math.inf), ("beta", -1), ("sparsity", math.nan), ("seed", -1),
                                         ("seed", 2**64), ("device", "tpu"), ("max_steps", 0), ("recon", "huber")])
def test_bad_training_settings_are_refused(field, value):
    with pytest.raises(ValueError):
        TrainConfig(**{field: value})


def test_bad_history_and_spec_are_refused_outside_checkpoints_too():
    with pytest.raises(ValueError, match="history"):
        History.from_dict([])
    with pytest.raises(SpecError, match="parameters"):
        ModelSpec("mlp", hidden=(8192,) * 8)
    assert ModelSpec("conv_vae", (1, 28, 28), 2, True).parameter_count() == 96_677  # the shipped conv VAE's


# --- deep links: every value a URL can carry, outside each widget's range or type ------------------------------

DEEP_LINKS = {
    "pages/reconstruct.py": [{"noise": "bogus"}, {"noise": "gaussian:abc"}, {"noise": "gaussian:nan"},
                             {"noise": "masking:5"}, {"noise": "masking:-1"}, {"noise": "gaussian:inf"},
                             {"noise": "gaussian:5"}, {"n": "9" * 30}, {"n": "-3"}, {"n": "100"}, {"n": "nan"},
                             {"seed": "-1"}, {"seed": "2000000"}, {"model": "shipped:../../etc/passwd"}],
    "pages/latent.py": [{"seed": "9" * 30}, {"seed": "-1"}, {"seed": "4294967296"}, {"dims": "5,9"},
                        {"dims": "a,b"}, {"dims": "1,2,3"}, {"proj": "umap"}],
    "pages/evaluation.py": [{"mix": "1,2;x"}, {"mix": "99,0"}, {"mix": ";".join(["0,0"] * 50)}, {"mix": "nan,0"},
                            {"mixsd": "nan"}, {"mixsd": "9"}, {"mixseed": "-3"}, {"iwn": "7"},
                            {"iwmodel": "shipped:linear_ae"}, {"iwmodel": "<b>x</b>"}, {"digit": "100000"},
                            {"memn": "1e9"}, {"pzn": "-1"}, {"ringn": "abc"}, {"ringseed": "9" * 30}],
    "pages/inside.py": [{"tdigit": "-1"}, {"tdigit": "1000000"}, {"tdigit": "x"}, {"model": "shipped:../../etc"}],
    "pages/train.py": [{"noise": "gaussian:abc"}, {"noise": "gaussian:inf"}, {"latent": "0"}, {"latent": "-1"},
                       {"latent": "999"}, {"latent": "9" * 30}, {"seed": "-1"}, {"seed": "2147483648"},
                       {"epochs": "-5"}, {"epochs": "0"},
                       {"loss": "sum"}, {"loss": "as_written", "preset": "conv_ae"}, {"preset": "<b>x</b>"},
                       {"dataset": "mnist-1e9"}],
}
CASES = [(page, query) for page, queries in DEEP_LINKS.items() for query in queries]


@pytest.mark.slow
@pytest.mark.parametrize("page,query", CASES, ids=[f"{p[6:-3]}-{'&'.join(f'{k}={v[:12]}' for k, v in q.items())}"
                                                   for p, q in CASES])
def test_a_deep_link_out_of_range_opens_the_page_with_defaults(page, query):
    at = open_link(page, query)
    for section in each_section(at, page):  # a Lab's sections are tabs: each reads the link when it opens
        assert not at.exception, (section, [e.value for e in at.exception])
        assert at.title
        for number in [*at.number_input, *at.slider]:  # every widget was given a value in its own range
            low, high = number.proto.min, number.proto.max
            values = number.value if isinstance(number.value, tuple) else (number.value,)
            assert all(low <= float(v) <= high for v in values), (section, number.label, number.value)
