"""A training run in its own worker process: start, watch a snapshot, stop within one step, or end it outright.

Why a process, not a thread (issue #10): in a thread, the run shares the Streamlit server's GIL and torch thread
pool with every page that is drawn, and a watched conv VAE run fell to 7 images/s. In its own process the run has
its own interpreter and threads (as many as `runtime.threads_for` gives it), and the server only copies small
messages off a queue. The worker (worker.py) gets the model's spec and initial weights, the data as arrays, the
config, its thread count and the parent's fast-path plan (so it does not measure again); it sends back every
training event, a preview after each epoch and the weights after each epoch and at the end, so Stop, an error or
even a killed process keeps the last good weights.

Workers start from a fork server that has already imported torch and aecore and built one optimizer (preload.py;
Linux, `spawn` elsewhere), so a run's first step comes 0.1 s after Start instead of 1 s (`warm_up()` starts the
server ahead of time).
"""
from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import threading
import time
import types
from dataclasses import dataclass, field

import torch

from . import fastpath, runtime, worker
from .events import History, StepEvent
from .noise import corrupt
from .timelapse import Frame, Timelapse
from .train import TrainConfig


@dataclass
class JobSnapshot:
    """A consistent copy of a job's state, safe to read from any thread."""

    status: str  # "starting" | "running" | "stopping" | "done" | "stopped" | "error"
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
    metrics: dict | None = None  # test metrics of the final model, once the worker has computed them
    selected_epoch: int | None = None  # keep_best: the epoch whose weights the model ended with

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "error")

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


def _context():
    """The fork server where the platform has one (fast starts: torch is imported once), else spawn. Never plain
    fork: the server process has threads (Streamlit's, torch's) that a fork would copy mid-flight."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["aecore.preload"])
        return ctx
    return mp.get_context("spawn")


_start_lock = threading.Lock()


def _start(process) -> None:
    """Start a worker without the parent's `__main__`. multiprocessing re-imports the parent's main script in
    every child (for pickled functions defined there); under Streamlit that is the page being drawn, so each
    worker would run the whole app. Workers need nothing from `__main__` (their target is `_worker_main`), so it
    is hidden for the moment of the start."""
    with _start_lock:
        real = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            sys.modules["__main__"] = real


class TrainingJob:
    """Runs `train()` in a worker process. `model` is the freshly built model; it receives the trained weights
    when the run ends (read it only once `finished`)."""

    def __init__(self, model, train_x, test_x, cfg: TrainConfig, preview_images: torch.Tensor | None = None,
                 threads: int | None = None, val_x=None, labels=None, metrics_iw_samples: int | None = None,
                 keep_best: bool = False):
        """labels: (train_y, test_y) for the final evaluation's probe; metrics_iw_samples: if not None, the worker
        evaluates the final model (`metrics.evaluate_model`) after sending its weights, so the result is usable at
        once and the metrics follow. keep_best: end with the weights of the epoch with the lowest loss on val_x."""
        if keep_best and (val_x is None or not len(val_x)):
            raise ValueError("keeping the best epoch needs a validation split")
        self.model, self.cfg = model, cfg
        # the preview shows what the model is asked to do: clean for plain AEs, corrupted for denoising ones
        self.preview_input = None if preview_images is None else corrupt(
            preview_images, cfg.noise_spec, torch.Generator().manual_seed(cfg.seed))
        self.threads = threads or runtime.threads_for(1)
        steps_per_epoch = -(-len(train_x) // cfg.batch_size)
        total = cfg.epochs * steps_per_epoch
        self._state = dict(status="starting", step=0, total_steps=min(total, cfg.max_steps or total), epoch=0,
                           epochs=cfg.epochs, samples_per_s=0.0, eta_s=float("nan"), error=None, last={},
                           selected_epoch=None)
        self._history = History()
        self._frames: list[Frame] = []  # the time-lapse, one frame per epoch
        self._n_test = len(test_x)
        self._preview: torch.Tensor | None = None
        self._weights: bytes | None = None
        self._metrics: dict | None = None
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._started = self._ended = None
        ctx = _context()
        self._stop = ctx.Event()
        self._threads = ctx.Value("i", self.threads, lock=False)  # the registry may re-share the CPU budget
        self._queue = ctx.Queue()
        train_y, test_y = labels or (None, None)
        arrays = [None if t is None else t.detach().cpu().numpy()
                  for t in (train_x, test_x, val_x, self.preview_input, train_y, test_y)]
        self._process = ctx.Process(
            target=worker.main, name="aecore-train", daemon=True,
            args=(model.spec.to_dict(), worker.state_bytes(model), arrays, cfg.to_dict(), self._threads,
                  fastpath.plan().to_dict(), self._stop, self._queue, metrics_iw_samples, keep_best))
        self._reader = threading.Thread(target=self._read, name="aecore-train-reader", daemon=True)

    def start(self) -> "TrainingJob":
        self._started = time.perf_counter()
        _start(self._process)
        self._reader.start()
        return self

    def stop(self) -> None:
        """Ask the worker to stop; it checks before every step, then sends its weights and exits."""
        self._stop.set()
        with self._lock:
            if self._state["status"] in ("starting", "running"):
                self._state["status"] = "stopping"

    def kill(self, reason: str = "the run was ended") -> None:
        """End the worker outright (it did not stop in time, or its visitor left); the model keeps the weights of
        the last finished epoch."""
        self._stop.set()
        if self._process.is_alive():
            self._process.kill()
        self._finish("stopped", reason)

    def set_threads(self, n: int) -> None:
        """Change the worker's thread count; it applies it between steps (when another run starts or ends)."""
        self.threads = self._threads.value = max(1, int(n))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the run has ended and its result is in; True if it has."""
        return self._finished.wait(timeout)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def history(self) -> History:
        return self.snapshot().history

    def timelapse(self) -> Timelapse | None:
        """The run's time-lapse so far (each epoch's snapshot of fixed test images, prior samples and codes)."""
        with self._lock:
            frames = list(self._frames)
        return Timelapse.from_frames(frames, self._n_test)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            end = self._ended or time.perf_counter()
            return JobSnapshot(**self._state, elapsed_s=end - (self._started or end), metrics=self._metrics,
                               history=History.from_dict(self._history.to_dict()),
                               preview=None if self._preview is None else self._preview.clone())

    # ---- the parent's side: a thread that copies the worker's messages into the snapshot ----

    def _read(self) -> None:
        while self._process.is_alive() or not self._finished.is_set():  # metrics may follow the end
            try:
                kind, payload = self._queue.get(timeout=0.2)
            except queue.Empty:
                if not self._process.is_alive():
                    self._drain()
                    if not self._finished.is_set():
                        code = self._process.exitcode
                        self._finish("error", f"the training process ended unexpectedly (exit code {code})")
                    return
                continue
            except Exception as e:  # a message cut short by a killed worker, a closed pipe
                self._finish("error", f"lost contact with the training process ({type(e).__name__})")
                return
            self._handle(kind, payload)

    def _drain(self) -> None:
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except Exception:  # empty, or cut short by a killed worker
                return
            self._handle(kind, payload)

    def _handle(self, kind: str, payload) -> None:
        if kind == "started":
            with self._lock:
                if self._state["status"] == "starting":
                    self._state["status"] = "running"
        elif kind == "event":
            with self._lock:
                self._history.record(payload)
                if isinstance(payload, StepEvent):
                    self._state.update(step=payload.step, epoch=payload.epoch, samples_per_s=payload.samples_per_s,
                                       eta_s=payload.eta_s, last={"loss": payload.loss, **payload.parts})
        elif kind == "epoch":  # weights and preview after an epoch
            weights, preview = payload
            with self._lock:
                self._weights = weights
                if preview is not None:
                    self._preview = torch.from_numpy(preview)
        elif kind == "frame":
            with self._lock:
                self._frames.append(Frame.from_arrays(payload))
        elif kind == "metrics":
            with self._lock:
                self._metrics = payload
        elif kind == "end":
            status, error, weights, selected = payload
            with self._lock:
                self._weights = weights or self._weights
                self._state["selected_epoch"] = selected
            self._finish(status, error)

    def _finish(self, status: str, error: str | None) -> None:
        with self._lock:
            if self._finished.is_set():
                return
            if self._weights is not None:
                worker.load_state(self.model, self._weights)
            self.model.eval()
            self._state.update(status=status, error=error, eta_s=0.0)
            self._ended = time.perf_counter()
            self._finished.set()


def warm_up() -> None:
    """Start the fork server now (it imports torch once), so the first run does not wait for it."""
    p = _context().Process(target=worker.noop, name="aecore-warm-up", daemon=True)
    _start(p)
    p.join()
