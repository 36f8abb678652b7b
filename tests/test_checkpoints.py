import io
import os
import pickle

import pytest
import torch

from aecore import checkpoints
from aecore.catalog import MODELS
from aecore.checkpoints import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint, to_bytes
from aecore.train import build_seeded, train


@pytest.fixture(scope="module")
def trained(mnist):
    preset = MODELS["conv_vae"]
    cfg = preset.config(epochs=1, max_steps=5)
    model = build_seeded(preset.spec(mnist.shape), 0)
    ckpt = Checkpoint(model, "conv_vae", "mnist-5k", cfg, metrics={"neg_elbo": 123.4})
    for event in train(model, mnist.train_x, mnist.test_x[:50], cfg):
        ckpt.history.record(event)
    return ckpt


def test_save_load_round_trips_exactly(trained, tmp_path, mnist):
    path = save_checkpoint(trained, tmp_path / "m.pt")
    loaded = load_checkpoint(path)
    assert loaded.spec == trained.spec and loaded.config == trained.config
    assert loaded.metrics == trained.metrics and loaded.history == trained.history
    for (k, a), (k2, b) in zip(trained.model.state_dict().items(), loaded.model.state_dict().items()):
        assert k == k2 and torch.equal(a.cpu(), b)
    trained.model.eval()
    x = mnist.test_x[:5]
    # same weights; the trained copy runs channels_last, so allow float rounding between conv algorithms
    assert torch.allclose(trained.model.reconstruct(x), loaded.model.reconstruct(x), atol=1e-5)


def test_loads_from_bytes(trained):
    assert load_checkpoint(to_bytes(trained)).model_name == "conv_vae"


@pytest.mark.parametrize("fail_at", ["replace", "fsync", "serialise"])
def test_atomic_save_leaves_no_temp_files_and_keeps_old_file_on_failure(trained, tmp_path, monkeypatch, fail_at):
    """A save that fails at any point, including the final rename, leaves the old file whole and no temp file.
    A plain write to the target would pass the serialise case but fail the other two."""
    path = save_checkpoint(trained, tmp_path / "m.pt")
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if fail_at == "serialise":
        monkeypatch.setattr(checkpoints, "to_bytes", fail)
    else:
        monkeypatch.setattr(checkpoints.os, fail_at, fail)
    trained.metrics["changed"] = 1.0  # the new save would differ from the old file
    try:
        with pytest.raises(OSError, match="No space"):
            save_checkpoint(trained, path)
    finally:
        del trained.metrics["changed"]
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.pt"]


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/aecore_pwned",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "aecore-checkpoint", "version": 1, "payload": Boom()}, path)
    if os.path.exists("/tmp/aecore_pwned"):
        os.remove("/tmp/aecore_pwned")
    with pytest.raises(CheckpointError, match="not a readable aecore checkpoint"):
        load_checkpoint(path)
    assert not os.path.exists("/tmp/aecore_pwned")
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not os.path.exists("/tmp/aecore_pwned")


def test_truncated_corrupt_and_foreign_files_give_clear_errors(trained, tmp_path):
    data = to_bytes(trained)
    cases = {"truncated": data[: len(data) // 2], "garbage": b"hello, not a checkpoint" * 10, "empty": b""}
    for name, content in cases.items():
        (tmp_path / f"{name}.pt").write_bytes(content)
        with pytest.raises(CheckpointError, match="not a readable"):
            load_checkpoint(tmp_path / f"{name}.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an aecore checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")


def test_spec_that_does_not_match_the_weights_is_refused(trained):
    payload = torch.load(io.BytesIO(to_bytes(trained)), weights_only=True)
    payload["meta"] = payload["meta"].replace('"latent_dim": 2', '"latent_dim": 3')
    buf = io.BytesIO()
    torch.save(payload, buf)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(buf.getvalue())
    payload["meta"] = payload["meta"].replace('"family": "conv_vae"', '"family": "transformer"')
    buf = io.BytesIO()
    torch.save(payload, buf)
    with pytest.raises(CheckpointError, match="invalid metadata"):
        load_checkpoint(buf.getvalue())
