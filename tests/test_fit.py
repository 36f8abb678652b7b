"""fit(), the one training driver: history, best weights on validation, refit, stop, events to the caller."""
import threading

import pytest
import torch

from aecore.catalog import MODELS
from aecore.events import EpochEvent, StepEvent
from aecore.fit import fit
from aecore.train import build_seeded, evaluate


def _setup(mnist, epochs=6, lr=1e-2):
    preset = MODELS["linear_ae"]
    cfg = preset.config(epochs=epochs, batch_size=50, lr=lr)
    # a validation set unlike the training images (inverted digits), so a middle epoch is the best one
    return cfg, build_seeded(preset.spec(mnist.shape), 0), mnist.train_x[:300], 1 - mnist.test_x[:200]


def test_keep_best_ends_with_the_weights_of_the_best_validation_epoch(mnist):
    cfg, model, train_x, val_x = _setup(mnist)
    result = fit(model, train_x, mnist.test_x[:0], cfg, val_x=val_x, keep_best=True)
    val = result.history.val["loss"]
    assert len(val) == cfg.epochs and result.selected_epoch == val.index(min(val)) + 1
    assert result.selected_epoch < cfg.epochs  # otherwise this test could not tell "restored" from "last"
    assert evaluate(model, val_x, cfg)["loss"] == pytest.approx(min(val), rel=1e-6)


def test_refit_trains_afresh_on_every_image_for_the_chosen_epochs(mnist):
    cfg, model, train_x, val_x = _setup(mnist)
    everything = torch.cat([train_x, mnist.train_x[300:400]])
    result = fit(model, train_x, mnist.test_x[:100], cfg, val_x=val_x, keep_best=True, refit_x=everything)
    chosen = result.selected_epoch
    assert result.selection is not None and len(result.selection.val["loss"]) == cfg.epochs
    assert len(result.history.epoch) == chosen and result.seconds > result.history.seconds
    # the same as training the same initial weights on all images for that many epochs (constant schedule)
    again = build_seeded(model.spec, cfg.seed)
    fit(again, everything, mnist.test_x[:0], MODELS["linear_ae"].config(epochs=chosen, batch_size=50, lr=1e-2))
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)


def test_stop_ends_the_run_within_a_step_and_every_event_reaches_the_caller(mnist):
    cfg, model, train_x, _ = _setup(mnist, epochs=3)
    stop, seen = threading.Event(), []

    def listen(event):
        seen.append(event)
        if isinstance(event, StepEvent) and event.step == 7:
            stop.set()
    result = fit(model, train_x, mnist.test_x[:50], cfg, stop=stop, on_event=listen)
    assert result.stopped and result.history.step == list(range(1, 8))
    assert [type(e) for e in seen].count(EpochEvent) == 1  # epoch 1 (6 steps) finished, epoch 2 did not


def test_settings_that_cannot_work_are_refused_before_training(mnist):
    cfg, model, train_x, _ = _setup(mnist)
    with pytest.raises(ValueError, match="validation"):
        fit(model, train_x, mnist.test_x[:0], cfg, keep_best=True)
    with pytest.raises(ValueError, match="keep_best"):
        fit(model, train_x, mnist.test_x[:0], cfg, refit_x=train_x)


def test_a_run_in_a_worker_process_keeps_the_best_epoch_too(mnist):
    """The app's path (TrainingJob -> worker.py -> fit): same selection, and the parent's model holds those weights."""
    from aecore.jobs import TrainingJob

    cfg, model, train_x, val_x = _setup(mnist)
    job = TrainingJob(model, train_x, mnist.test_x[:50], cfg, val_x=val_x, keep_best=True).start()
    assert job.join(120)
    snap = job.snapshot()
    val = snap.history.val["loss"]
    assert snap.status == "done" and len(val) == cfg.epochs
    assert snap.selected_epoch == val.index(min(val)) + 1 < cfg.epochs
    assert evaluate(job.model, val_x, cfg)["loss"] == pytest.approx(min(val), rel=1e-5)
