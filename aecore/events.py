"""What the training loop tells its listeners: an event per optimiser step and per epoch, and the History that
records them (JSON-serialisable, stored in checkpoints, drawn as learning curves)."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepEvent:
    step: int  # optimiser steps done, 1-based
    total_steps: int
    epoch: int  # 1-based epoch this step belongs to
    loss: float  # batch mean, nats per image
    parts: dict[str, float]  # recon / kl / sparsity batch means
    samples_per_s: float
    eta_s: float


@dataclass
class EpochEvent:
    epoch: int
    epochs: int
    step: int
    train: dict[str, float]  # means over the epoch's batches
    test: dict[str, float]  # means over the test split, same objective
    elapsed_s: float
    val: dict[str, float] = field(default_factory=dict)  # means over a validation split carved from train, if any
    frame: Any = None  # a timelapse.Frame when the run keeps a time-lapse (fit's `timelapse`)


@dataclass
class History:
    """Everything a learning-curve plot needs; JSON-serialisable for checkpoints."""

    step: list[int] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    epoch_step: list[int] = field(default_factory=list)  # optimiser step at which each epoch ended
    train: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, event) -> None:
        if isinstance(event, StepEvent):
            self.step.append(event.step)
            self.step_loss.append(event.loss)
        else:
            self.epoch.append(event.epoch)
            self.epoch_step.append(event.step)
            self.seconds = event.elapsed_s
            for store, values in ((self.train, event.train), (self.test, event.test), (self.val, event.val)):
                for k, v in values.items():
                    store.setdefault(k, []).append(v)

    def to_dict(self) -> dict:
        return asdict(self)

    def thinned(self, limit: int) -> "History":
        """A copy with at most `limit` per-step points, evenly spaced, the last kept (what a checkpoint stores: a
        curve of 5,000 steps drawn 700 px wide looks the same from 1,000 points, and costs a tenth of the file)."""
        out = History.from_dict(self.to_dict())
        if len(self.step) > limit:
            keep = sorted({round(i * (len(self.step) - 1) / (limit - 1)) for i in range(limit)})
            out.step, out.step_loss = [self.step[i] for i in keep], [self.step_loss[i] for i in keep]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """From JSON (a checkpoint): every field must have the shape a plot expects, else ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"history must be a JSON object, got {type(d).__name__}")
        d = {k: copy.deepcopy(v) for k, v in d.items() if k in cls.__dataclass_fields__}
        for name in ("step", "step_loss", "epoch", "epoch_step"):
            _check_numbers(name, d.get(name, []))
        for name in ("train", "test", "val"):
            curves = d.get(name, {})
            if not isinstance(curves, dict):
                raise ValueError(f"history field {name!r} must be a JSON object")
            for key, values in curves.items():
                _check_numbers(f"{name}.{key}", values)
        if not _is_number(d.get("seconds", 0.0)):
            raise ValueError("history field 'seconds' must be a number")
        return cls(**d)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_numbers(name: str, values) -> None:
    if not isinstance(values, list) or not all(_is_number(v) for v in values):
        raise ValueError(f"history field {name!r} must be a list of numbers")
