"""The training worker process's side of a run (jobs.py starts it): train, report, hand over the weights.

Every message is (kind, payload) on one queue: "started"; "event" (each training event); "epoch" (weights and a
preview after each epoch, sent before that epoch's event, so once an epoch shows its weights are safe); "end"
(status, error, final weights, the epoch kept by keep_best); then, if asked, "metrics" (the final model's test metrics).
"""
from __future__ import annotations

import io
import time
import traceback

import numpy as np
import torch

from . import fastpath, runtime
from .events import EpochEvent
from .fit import fit
from .train import TrainConfig, TrainingError


def state_bytes(model) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def load_state(model, data: bytes) -> None:
    model.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))


def noop() -> None:
    """What a warm-up process runs: nothing (starting it starts the fork server)."""


def main(spec: dict, weights: bytes, arrays, cfg: dict, threads, plan: dict, stop, out,
         metrics_iw_samples: int | None = None, keep_best: bool = False) -> None:
    """Entry point of the training process. Every outcome ends with one ("end", ...) message."""
    from .models import ModelSpec, build_model

    runtime.use_threads(threads.value)
    runtime.keep_freed_memory()  # this process only trains: the allocator tweak is safe here
    fastpath.use_plan(plan)
    status, error, model, selected = "done", None, None, None
    try:
        config = TrainConfig.from_dict(cfg)
        model = build_model(ModelSpec.from_dict(spec))
        load_state(model, weights)
        train_x, test_x, val_x, preview, train_y, test_y = (None if a is None else torch.from_numpy(a) for a in arrays)
        out.put(("started", None))
        tuner = runtime.ThreadTuner()

        def report(event):
            if isinstance(event, EpochEvent):  # weights first: once the epoch shows, its weights are safe
                out.put(("epoch", (state_bytes(model), _preview(model, preview))))
                if event.frame is not None:
                    out.put(("frame", event.frame.to_arrays()))
                    event.frame = None
            else:  # between steps: the budget (re-shared as runs start and end) or one thread, whichever is faster
                runtime.use_threads(tuner.after_step(time.perf_counter(), threads.value))
            out.put(("event", event))

        result = fit(model, train_x, test_x, config, val_x=val_x, keep_best=keep_best, stop=stop, on_event=report,
                     timelapse=True)
        status, selected = ("stopped" if result.stopped else "done"), result.selected_epoch
    except TrainingError as e:  # e.g. NaN: train() has put back the last good weights
        status, error = "error", str(e)
    except MemoryError:
        status, error = "error", "out of memory: try a smaller batch size, model or dataset"
    except Exception as e:  # the parent must always hear how the run ended
        status, error = "error", f"{type(e).__name__}: {e}"
        traceback.print_exc()
    out.put(("end", (status, error, None if model is None else state_bytes(model), selected)))
    if metrics_iw_samples is not None and model is not None and (status != "error" or error and "NaN" in error):
        try:
            from types import SimpleNamespace

            from .metrics import evaluate_model

            data = SimpleNamespace(train_x=train_x, test_x=test_x, train_y=train_y, test_y=test_y)
            out.put(("metrics", evaluate_model(model.cpu().eval(), data, config, iw_samples=metrics_iw_samples)))
        except Exception as e:  # the weights are already safe; say what went wrong with the numbers
            out.put(("metrics", {"error": f"{type(e).__name__}: {e}"}))
    out.close()
    out.join_thread()  # make sure the last message is flushed before the process exits


@torch.inference_mode()
def _preview(model, images) -> np.ndarray | None:
    if images is None:
        return None
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = model.reconstruct(images.to(device)).cpu().numpy()
    model.train(was_training)
    return out
