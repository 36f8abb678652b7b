"""A training run in a background thread: start, watch a thread-safe snapshot, stop within one step."""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field

import torch

from .noise import corrupt
from .train import EpochEvent, History, StepEvent, TrainConfig, TrainingError, train


@dataclass
class JobSnapshot:
    """A consistent copy of a job's state, safe to read from any thread."""

    status: str  # "running" | "done" | "stopped" | "error"
    step: int
    total_steps: int
    epoch: int
    epochs: int
    samples_per_s: float
    eta_s: float
    elapsed_s: float
    history: History
    preview: torch.Tensor | None  # (K, C, H, W) reconstructions of fixed test images after the last epoch
    error: str | None = None
    last: dict = field(default_factory=dict)  # last step's loss parts

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


class TrainingJob:
    """Runs `train()` in a daemon thread. The model is trained in place; read it only once `finished`."""

    def __init__(self, model, train_x, test_x, cfg: TrainConfig, preview_images: torch.Tensor | None = None):
        self.model, self.cfg = model, cfg
        self._train_x, self._test_x = train_x, test_x
        # the preview shows what the model is asked to do: clean for plain AEs, corrupted for denoising ones
        self.preview_input = None if preview_images is None else corrupt(
            preview_images, cfg.noise_spec, torch.Generator().manual_seed(cfg.seed))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        steps_per_epoch = -(-len(train_x) // cfg.batch_size)
        total = cfg.epochs * steps_per_epoch
        self._state = dict(status="running", step=0, total_steps=min(total, cfg.max_steps or total), epoch=0,
                           epochs=cfg.epochs, samples_per_s=0.0, eta_s=float("nan"), error=None, last={})
        self._history = History()
        self._preview: torch.Tensor | None = None
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._thread = threading.Thread(target=self._run, name="aecore-train", daemon=True)

    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to stop; it checks before every step."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def history(self) -> History:
        return self.snapshot().history

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            end = self._ended or time.perf_counter()
            return JobSnapshot(**self._state, elapsed_s=end - self._started,
                               history=History.from_dict(self._history.to_dict()),
                               preview=None if self._preview is None else self._preview.clone())

    def _run(self) -> None:
        status, error = "done", None
        try:
            for event in train(self.model, self._train_x, self._test_x, self.cfg, self._stop):
                self._on_event(event)
            if self._stop.is_set():
                status = "stopped"
        except TrainingError as e:
            status, error = "error", str(e)
        except MemoryError:
            status, error = "error", "out of memory: try a smaller batch size, model or dataset"
        except Exception as e:  # a background thread must never die silently
            status, error = "error", f"{type(e).__name__}: {e}"
            traceback.print_exc()
        with self._lock:
            self._state.update(status=status, error=error, eta_s=0.0)
            self._ended = time.perf_counter()
        self.model.eval()

    def _on_event(self, event) -> None:
        preview = self._make_preview() if isinstance(event, EpochEvent) else None
        with self._lock:
            self._history.record(event)
            if isinstance(event, StepEvent):
                self._state.update(step=event.step, epoch=event.epoch, samples_per_s=event.samples_per_s,
                                   eta_s=event.eta_s, last={"loss": event.loss, **event.parts})
            if preview is not None:
                self._preview = preview

    @torch.inference_mode()
    def _make_preview(self):
        """Runs in the training thread, between steps, so it never races the optimiser."""
        if self.preview_input is None:
            return None
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        out = self.model.reconstruct(self.preview_input.to(device)).cpu()
        self.model.train(was_training)
        return out
