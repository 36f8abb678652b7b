import math

import pytest
import torch

from aecore.catalog import MODELS
from aecore.jobs import TrainingJob
from aecore.train import EpochEvent, StepEvent, TrainConfig, TrainingError, build_seeded, evaluate, train
from waiting import wait_for


def run(preset_name, data, steps, batch=64, **overrides):
    preset = MODELS[preset_name]
    cfg = preset.config(epochs=50, batch_size=batch, max_steps=steps, seed=0, **overrides)
    model = build_seeded(preset.spec(data.shape), cfg.seed)
    events = list(train(model, data.train_x, data.test_x[:200], cfg))
    return model, cfg, events


@pytest.mark.parametrize("name", list(MODELS))
def test_a_few_hundred_steps_reduce_the_loss_of_every_model(name, mnist):
    steps = 120 if "conv" in MODELS[name].family else 300
    model, cfg, events = run(name, mnist, steps)
    losses = [e.loss for e in events if isinstance(e, StepEvent)]
    assert len(losses) == steps
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.8 * first, (name, first, last)
    # and the model generalises: test objective after training beats the untrained model's
    fresh = build_seeded(model.spec, 0)
    assert evaluate(model, mnist.test_x[:200], cfg)["loss"] < evaluate(fresh, mnist.test_x[:200], cfg)["loss"]


def test_events_report_progress_and_test_loss(mnist):
    cfg = TrainConfig(epochs=2, batch_size=500, recon="bce")
    model = build_seeded(MODELS["mlp_vae"].spec(mnist.shape), 0)
    events = list(train(model, mnist.train_x, mnist.test_x, cfg))
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [e.step for e in steps] == list(range(1, 17)) and steps[-1].total_steps == 16
    assert [e.epoch for e in epochs] == [1, 2]
    assert set(epochs[0].test) == {"loss", "recon", "kl"} and set(steps[0].parts) == {"recon", "kl"}
    assert all(e.samples_per_s > 0 and e.eta_s >= 0 for e in steps)
    assert math.isclose(epochs[1].test["loss"], epochs[1].test["recon"] + epochs[1].test["kl"], rel_tol=1e-5)
    assert epochs[1].test["loss"] < epochs[0].test["loss"]


def test_same_spec_and_seed_give_the_same_losses(mnist):
    def losses():
        _, _, events = run("conv_vae", mnist, 15)
        return [e.loss for e in events if isinstance(e, StepEvent)]

    assert losses() == losses()


def test_nan_loss_stops_with_a_message_and_keeps_good_weights(mnist):
    cfg = TrainConfig(epochs=3, batch_size=200, lr=1e-3, recon="mse")
    model = build_seeded(MODELS["linear_ae"].spec(mnist.shape), 0)
    data = mnist.train_x[:1000].clone()
    data[900] = float("nan")  # a poisoned image in the last batch of epoch 1 when not shuffled away
    gen = train(model, data, mnist.test_x[:100], cfg)
    with pytest.raises(TrainingError, match="NaN"):
        for _ in gen:
            pass
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_job_runs_in_background_and_stops_within_a_step(mnist):
    cfg = TrainConfig(epochs=100, batch_size=50, recon="mse")
    model = build_seeded(MODELS["conv_ae"].spec(mnist.shape), 0)
    job = TrainingJob(model, mnist.train_x, mnist.test_x[:100], cfg, preview_images=mnist.test_x[:4]).start()
    assert wait_for(lambda: job.snapshot().step >= 3, 60)
    job.stop()
    job.join(timeout=30)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.finished
    assert 3 <= snap.step < 80  # stopped long before the 8000 steps asked for
    assert len(snap.history.step_loss) == snap.step


def test_job_snapshot_has_history_and_preview_after_an_epoch(mnist):
    cfg = TrainConfig(epochs=1, batch_size=200, recon="bce", noise="masking:0.5")
    model = build_seeded(MODELS["mlp_vae"].spec(mnist.shape), 0)
    job = TrainingJob(model, mnist.train_x[:1000], mnist.test_x[:200], cfg, preview_images=mnist.test_x[:6])
    job.start().join(timeout=120)
    snap = job.snapshot()
    assert snap.status == "done" and snap.error is None and snap.progress == 1.0
    assert snap.history.epoch == [1] and len(snap.history.test["loss"]) == 1
    assert snap.preview.shape == (6, 1, 28, 28)
    assert (job.preview_input == 0).float().mean() > 0.4  # the preview shows the masked inputs it was fed


def test_job_reports_errors_instead_of_dying(mnist):
    cfg = TrainConfig(epochs=1, batch_size=100, lr=1e-3, recon="mse")
    model = build_seeded(MODELS["linear_ae"].spec(mnist.shape), 0)
    bad = mnist.train_x[:200].clone()
    bad[:] = float("inf")
    job = TrainingJob(model, bad, mnist.test_x[:10], cfg)
    job.start().join(timeout=60)
    snap = job.snapshot()
    assert snap.status == "error" and "NaN or infinite" in snap.error


@pytest.mark.parametrize("kwargs, word", [
    (dict(epochs=0), "epochs"), (dict(lr=-1), "learning rate"), (dict(noise="fog:1"), "noise"),
    (dict(recon="huber"), "reconstruction"), (dict(lr_schedule="step"), "schedule"),
])
def test_bad_training_settings_are_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_cosine_schedule_anneals_the_last_updates_to_nothing(mnist, schedule):
    cfg = TrainConfig(epochs=2, batch_size=100, lr=1e-3, recon="mse", lr_schedule=schedule)
    model = build_seeded(MODELS["linear_ae"].spec(mnist.shape), 0)
    snapshots = []
    for event in train(model, mnist.train_x[:500], mnist.test_x[:0], cfg):
        if isinstance(event, StepEvent) and event.step >= event.total_steps - 1:
            snapshots.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    last_update = (snapshots[1] - snapshots[0]).abs().max().item()
    # Adam moves each weight by about lr per step; cosine's last step uses lr * (1 + cos(pi * 9/10)) / 2 = 0.024 lr
    assert (last_update < 0.1 * cfg.lr) if schedule == "cosine" else (last_update > 0.3 * cfg.lr)
