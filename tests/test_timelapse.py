"""Training time-lapses (aecore.timelapse) and half-precision weights, with real models trained for a few epochs."""
import io

import pytest
import torch

from aecore.catalog import MODELS
from aecore.checkpoints import Checkpoint, CheckpointError, load_checkpoint, round_weights, to_bytes
from aecore.events import EpochEvent
from aecore.fit import fit
from aecore.jobs import TrainingJob
from aecore.metrics import reconstruct_batched
from aecore.timelapse import MAX_FRAMES, N_IMAGES, N_SAMPLES, fixed_indices, keep_epochs, to_uint8
from aecore.train import TrainConfig, build_seeded


@pytest.fixture(scope="module")
def vae_run(mnist):
    cfg = TrainConfig(epochs=3, batch_size=100, recon="bce")
    model = build_seeded(MODELS["mlp_vae"].spec(mnist.shape), 0)
    seen = []
    result = fit(model, mnist.train_x[:600], mnist.test_x[:400], cfg, timelapse=True,
                 on_event=lambda e: seen.append(e.frame) if isinstance(e, EpochEvent) else None)
    return result, cfg, seen


def test_each_epoch_is_snapshotted_after_it_ends(vae_run, mnist):
    result, _, seen = vae_run
    tl = result.timelapse
    assert tl.epochs.tolist() == [1, 2, 3] and all(f is not None for f in seen)  # each EpochEvent carried its frame
    assert tl.recon.shape == (3, N_IMAGES, 1, 28, 28) and tl.recon.dtype == torch.uint8
    assert tl.samples.shape == (3, N_SAMPLES, 1, 28, 28)
    image_index, code_index = fixed_indices(400)
    assert torch.equal(tl.image_index, image_index) and tl.codes.shape == (3, len(code_index), 2)
    # the last frame is the final model (no keep_best): its reconstructions and codes, exactly
    final = to_uint8(reconstruct_batched(result.model, mnist.test_x[:400][image_index])[1])
    assert (final.int() - tl.recon[-1].int()).abs().max() <= 1
    codes = result.model.encode(mnist.test_x[:400][code_index]).detach()
    assert torch.allclose(tl.codes[-1], codes, atol=1e-5) and not tl.projected
    # and the model changes between epochs: epoch 1 is not epoch 3
    assert (tl.recon[0].float() - tl.recon[-1].float()).abs().mean() > 2
    assert (tl.samples[0].float() - tl.samples[-1].float()).abs().mean() > 2


def test_a_code_longer_than_two_is_drawn_on_the_last_epochs_principal_axes(mnist):
    model = build_seeded(MODELS["conv_ae_narrow"].spec(mnist.shape), 0)
    cfg = TrainConfig(epochs=2, batch_size=100, recon="mse")
    tl = fit(model, mnist.train_x[:300], mnist.test_x[:200], cfg, timelapse=True).timelapse
    assert tl.projected and tl.codes.shape[-1] == 2 and tl.samples is None
    last = tl.codes[-1]
    assert last.mean(0).abs().max() < 1e-4  # centred on the last epoch's mean
    assert last[:, 0].var() >= last[:, 1].var() > 0  # the first axis carries the most variance
    codes = model.encode(mnist.test_x[:200][fixed_indices(200)[1]]).detach()
    total = (codes - codes.mean(0)).pow(2).sum(1).mean()
    assert last.pow(2).sum(1).mean() <= total + 1e-4  # a projection never adds spread


def test_long_runs_keep_at_most_max_frames_early_ones_densest():
    kept = keep_epochs(list(range(1, 51)))
    assert len(kept) <= MAX_FRAMES and kept[0] == 1 and kept[-1] == 50 and kept == sorted(set(kept))
    assert kept[:4] == [1, 2, 3, 4]
    assert keep_epochs([1, 2, 3]) == [1, 2, 3]


def test_a_checkpoint_keeps_its_time_lapse_and_half_weights_halve_the_file(vae_run, mnist):
    result, cfg, _ = vae_run
    full = to_bytes(Checkpoint(result.model, "mlp_vae", "mnist-5k", cfg, result.history, timelapse=result.timelapse))
    round_weights(result.model, "float16")
    half = to_bytes(Checkpoint(result.model, "mlp_vae", "mnist-5k", cfg, result.history,
                               extra={"weights_dtype": "float16"}, timelapse=result.timelapse))
    assert len(half) < 0.6 * len(full)
    raw = torch.load(io.BytesIO(half), weights_only=True)
    assert {v.dtype for v in raw["state_dict"].values()} == {torch.float16}
    back = load_checkpoint(half)
    x = mnist.test_x[:50]
    assert torch.equal(back.model.reconstruct(x), result.model.reconstruct(x))  # exactly the rounded model
    for name in ("epochs", "recon", "samples", "image_index", "code_index"):
        assert torch.equal(getattr(back.timelapse, name), getattr(result.timelapse, name)), name
    assert torch.allclose(back.timelapse.codes, result.timelapse.codes, atol=1e-2)  # stored as float16


@pytest.mark.parametrize("change, words", [
    (lambda t: t.update(recon=t["recon"].float()), "recon"),
    (lambda t: t.update(image_index=-t["image_index"] - 1), "image_index"),
    (lambda t: t.update(codes=t["codes"][:, :, :1]), "codes"),
    (lambda t: t.update(epochs=torch.arange(100)), "epochs"),
    (lambda t: t.update(extra=torch.zeros(1)), "must hold"),
    (lambda t: t.pop("codes"), "must hold"),
    (lambda t: t.update(codes=torch.full_like(t["codes"], float("nan"))), "not finite"),
])
def test_a_bad_time_lapse_in_a_file_is_a_clear_error(vae_run, change, words):
    result, cfg, _ = vae_run
    raw = torch.load(io.BytesIO(to_bytes(Checkpoint(result.model, "mlp_vae", "mnist-5k", cfg,
                                                    timelapse=result.timelapse))), weights_only=True)
    change(raw["timelapse"])
    buf = io.BytesIO()
    torch.save(raw, buf)
    with pytest.raises(CheckpointError, match="time-lapse") as e:
        load_checkpoint(buf.getvalue())
    assert words in str(e.value)


def test_a_worker_run_streams_its_time_lapse_back(mnist):
    cfg = TrainConfig(epochs=2, batch_size=100, recon="mse")
    model = build_seeded(MODELS["linear_ae"].spec(mnist.shape), 0)
    job = TrainingJob(model, mnist.train_x[:400], mnist.test_x[:100], cfg).start()
    assert job.join(60) and job.snapshot().status == "done"
    tl = job.timelapse()
    assert tl.epochs.tolist() == [1, 2] and tl.samples is None and tl.projected
    final = to_uint8(reconstruct_batched(job.model, mnist.test_x[:100][tl.image_index])[1])
    assert (final.int() - tl.recon[-1].int()).abs().max() <= 1  # the frame is the weights handed over
