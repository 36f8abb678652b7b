"""The one training driver. `train()` (train.py) is the loop, a stream of events; `fit()` runs it to the end for every
caller (the CLI, the app's worker process, the benchmarks): it records the History, keeps the weights of the epoch
with the lowest validation loss, can refit on every training image for that many epochs, honours a stop flag, and
hands each event to the caller (a progress bar, a worker's queue, a benchmark's clock).
"""
from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass
from typing import Callable

import torch

from .events import EpochEvent, History
from .models import Autoencoder
from .timelapse import Recorder, Timelapse
from .train import TrainConfig, train


@dataclass
class FitResult:
    model: Autoencoder  # the caller's model, trained in place (holding the kept weights)
    history: History  # of the run that produced the final weights
    stopped: bool  # the stop flag ended the run early
    selected_epoch: int | None = None  # keep_best: the epoch whose weights were kept (chosen on validation, never test)
    selection: History | None = None  # refit: the first run, whose validation curve chose the epoch count
    timelapse: Timelapse | None = None  # of the run that produced the final weights, if asked for

    @property
    def seconds(self) -> float:
        """Training time of all runs together."""
        return self.history.seconds + (self.selection.seconds if self.selection else 0.0)


def fit(model: Autoencoder, train_x: torch.Tensor, test_x: torch.Tensor, cfg: TrainConfig, *,
        val_x: torch.Tensor | None = None, keep_best: bool = False, refit_x: torch.Tensor | None = None,
        stop: threading.Event | None = None, on_event: Callable | None = None, timelapse: bool = False) -> FitResult:
    """Train `model` in place. keep_best: end with the weights of the epoch with the lowest loss on `val_x`.
    refit_x (with keep_best): then start again from the same initial weights on these images (usually the whole
    training split, validation included) with the same seed and schedule, and stop after the chosen epoch.
    timelapse: snapshot the model on fixed test images after every epoch (each EpochEvent carries its Frame).
    Raises train.TrainingError (e.g. NaN) with the last good weights in the model."""
    if keep_best and (val_x is None or not len(val_x)):
        raise ValueError("keeping the best epoch needs a validation split")
    if refit_x is not None and not keep_best:
        raise ValueError("a refit needs keep_best (the validation split chooses the epoch count)")
    initial = copy.deepcopy(model.state_dict()) if refit_x is not None else None
    recorder = Recorder(model, test_x, cfg.seed) if timelapse and len(test_x) else None
    history, best, frames = _run(model, train_x, test_x, cfg, val_x, stop, on_event, keep_best, recorder)
    result = FitResult(model, history, _stopped(stop))
    if keep_best:
        result.selected_epoch = best.restore()
    if refit_x is not None and result.selected_epoch and not result.stopped:
        model.load_state_dict(initial)
        result.selection = history
        result.history, _, frames = _run(model, refit_x, test_x, cfg, None, stop, on_event, False, recorder,
                                         result.selected_epoch)
        result.stopped = _stopped(stop)
    result.timelapse = Timelapse.from_frames(frames, len(test_x))
    return result


def _run(model, train_x, test_x, cfg, val_x, stop, on_event, keep_best, recorder, stop_after: int | None = None):
    """One pass of train() to its end (or to the end of epoch `stop_after`, keeping the full run's schedule)."""
    history, frames = History(), []
    best = BestWeights(model) if keep_best else None
    for event in train(model, train_x, test_x, cfg, stop, val_x=val_x):
        if recorder is not None and isinstance(event, EpochEvent):  # the weights are this epoch's while it yields
            event.frame = recorder.capture(event.epoch)
            frames.append(event.frame)
        history.record(event)
        if best is not None:
            best.update(event)
        if on_event is not None:
            on_event(event)
        if isinstance(event, EpochEvent) and event.epoch == stop_after:
            break
    return history, best, frames


def _stopped(stop) -> bool:
    return stop is not None and stop.is_set()


class BestWeights:
    """Keeps a copy of the weights from the epoch with the lowest validation loss (model selection that never
    looks at the test split)."""

    def __init__(self, model: Autoencoder):
        self.model, self.epoch, self.loss, self._state = model, 0, math.inf, None

    def update(self, event) -> None:
        loss = event.val.get("loss", math.inf) if isinstance(event, EpochEvent) else math.inf
        if loss < self.loss:
            self.epoch, self.loss = event.epoch, loss
            self._state = copy.deepcopy(self.model.state_dict())

    def restore(self) -> int:
        """Load the best weights into the model; returns their epoch (0 if there was no validation loss)."""
        if self._state is not None:
            self.model.load_state_dict(self._state)
        return self.epoch
