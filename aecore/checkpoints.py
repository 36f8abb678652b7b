"""One file per trained model: spec, weights, training config, history, dataset and metrics.

The file is a plain dict of tensors plus one JSON string, so it loads with `torch.load(weights_only=True)`:
nothing in it can execute code. Writes go to a temp file that is renamed into place, so a crash mid-write
never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from .models import Autoencoder, ModelSpec, SpecError, build_model
from .timelapse import Timelapse
from .train import History, TrainConfig

FORMAT, VERSION = "aecore-checkpoint", 1
SUFFIX = ".pt"
KEYS = {"format", "version", "meta", "state_dict"}
OPTIONAL_KEYS = {"timelapse"}  # a training time-lapse (timelapse.py), absent from older files
# Weights may be stored in half precision (extra["weights_dtype"] = "float16", the CLI's --half-weights): the model
# was rounded to those values before it was evaluated, so loading them back into float32 gives that exact model.
WEIGHT_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# Inflated size of the whole archive: the largest shipped checkpoint is 6 MB, the largest spec models.py allows
# ~100 MB. Checked from the zip's directory before torch.load inflates anything (a deflated member can be huge).
MAX_INFLATED_BYTES = 160 * 2**20
MAX_META_CHARS, MAX_NAME_CHARS = 8 * 2**20, 120
MAX_STEP_POINTS = 1000  # per-step losses kept in a file (History.thinned)


class CheckpointError(ValueError):
    """A file that is not a usable aecore checkpoint; the message says why, in one line."""


@dataclass
class Checkpoint:
    model: Autoencoder
    model_name: str  # catalog name, e.g. "conv_vae"
    dataset: str
    config: TrainConfig
    history: History = field(default_factory=History)
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # e.g. the command that reproduces it, training seconds
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    timelapse: Timelapse | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    def meta(self) -> dict:
        return {"model_name": self.model_name, "dataset": self.dataset, "spec": self.spec.to_dict(),
                "config": self.config.to_dict(), "history": self.history.thinned(MAX_STEP_POINTS).to_dict(),
                "metrics": self.metrics,
                "extra": self.extra, "created": self.created}


def to_bytes(ckpt: Checkpoint) -> bytes:
    """The checkpoint file's contents (for a download button)."""
    dtype = WEIGHT_DTYPES[ckpt.extra.get("weights_dtype", "float32")]
    state = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in ckpt.model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "meta": json.dumps(ckpt.meta()), "state_dict": state}
    if ckpt.timelapse is not None:
        payload["timelapse"] = ckpt.timelapse.to_tensors()
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


@torch.no_grad()
def round_weights(model: torch.nn.Module, dtype_name: str) -> None:
    """Round the model's floating-point weights to what `dtype_name` can hold (kept as float32 in memory)."""
    dtype = WEIGHT_DTYPES[dtype_name]
    for v in model.state_dict().values():
        if v.is_floating_point():
            v.copy_(v.to(dtype))


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write atomically: temp file in the same folder, fsync, rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_bytes(ckpt)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it owner-only; a checkpoint is meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(source: str | Path | bytes, name: str | None = None) -> Checkpoint:
    """Load from a path or raw bytes; any problem becomes a CheckpointError, never an exception trace.

    Everything is checked before it costs memory: the archive's inflated size, then the metadata's types and the
    spec's bounds (models.py), then the weights (shapes, and finite values)."""
    label = name or (Path(source).name if not isinstance(source, bytes) else "the uploaded file")
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise CheckpointError(f"{source}: no such checkpoint file")
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    _check_archive(stream, label)
    try:
        payload = torch.load(stream, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{label} is not a readable aecore checkpoint (refused or corrupt: {reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{label} is a PyTorch file but not an aecore checkpoint")
    version = payload.get("version")
    if type(version) is not int or version != VERSION:  # True == 1 and 1.0 == 1: compare the type too
        raise CheckpointError(f"{label} has checkpoint version {version!r}; this aecore reads version {VERSION}")
    if not KEYS <= set(payload) <= KEYS | OPTIONAL_KEYS:
        odd = ", ".join(sorted(map(str, (set(payload) - KEYS - OPTIONAL_KEYS) | (KEYS - set(payload)))))
        raise CheckpointError(f"{label} has unexpected or missing top-level entries: {odd}")
    try:
        meta = _read_meta(payload["meta"])
        spec = ModelSpec.from_dict(meta["spec"])
        config = TrainConfig.from_dict(meta["config"])
        history = History.from_dict(meta.get("history", {}))
        if meta.get("extra", {}).get("weights_dtype", "float32") not in WEIGHT_DTYPES:
            raise ValueError(f"weights_dtype must be one of {', '.join(WEIGHT_DTYPES)}")
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError, SpecError, ValueError) as e:
        raise CheckpointError(f"{label} has missing or invalid metadata ({type(e).__name__}: {e})") from None
    try:
        timelapse = (Timelapse.from_tensors(payload["timelapse"], spec.input_shape) if "timelapse" in payload
                     else None)
    except ValueError as e:
        raise CheckpointError(f"{label} has an unreadable training time-lapse ({e})") from None
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{label}: its weights are not a table of tensors")
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise CheckpointError(f"{label} has NaN or infinite weights (its training diverged); retrain it, e.g. with "
                              "a smaller learning rate")
    try:
        model = build_model(spec)
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # load_state_dict: shapes or names do not match the spec
        first = str(e).strip().splitlines()[0][:160]
        raise CheckpointError(f"{label}: weights do not match its model spec ({first})") from None
    model.eval()
    return Checkpoint(model, meta.get("model_name", spec.family), meta.get("dataset", "?"), config, history,
                      meta.get("metrics", {}), meta.get("extra", {}), meta.get("created", ""), timelapse)


def _check_archive(stream, label: str) -> None:
    """torch.save writes a zip archive: bound the members' inflated sizes before anything is read."""
    try:
        with zipfile.ZipFile(stream) as archive:
            inflated = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CheckpointError(f"{label} is not a readable aecore checkpoint (not a PyTorch zip archive)") from None
    finally:
        if hasattr(stream, "seek"):
            stream.seek(0)
    if inflated > MAX_INFLATED_BYTES:
        raise CheckpointError(f"{label} would inflate to {inflated / 2**20:,.0f} MB; checkpoints here are limited to "
                              f"{MAX_INFLATED_BYTES // 2**20} MB")


def _read_meta(text) -> dict:
    """The JSON metadata, with each field's type checked (names are shown to people: short, plain text)."""
    if not isinstance(text, str) or len(text) > MAX_META_CHARS:
        raise ValueError("the metadata must be a JSON text of at most 8 MB")
    meta = json.loads(text)
    if not isinstance(meta, dict):
        raise ValueError("the metadata must be a JSON object")
    for key in ("model_name", "dataset", "created"):
        if key in meta and not (isinstance(meta[key], str) and len(meta[key]) <= MAX_NAME_CHARS):
            raise ValueError(f"{key!r} must be text of at most {MAX_NAME_CHARS} characters")
    for key in ("metrics", "extra"):
        if not isinstance(meta.get(key, {}), dict):
            raise ValueError(f"{key!r} must be a JSON object")
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    fits = lambda v: number(v) or (isinstance(v, str) and len(v) <= MAX_NAME_CHARS) or (  # noqa: E731
        isinstance(v, list) and all(map(number, v)))
    if not all(map(fits, meta.get("metrics", {}).values())):
        raise ValueError("every metric must be a number, a list of numbers or a short text")
    return meta


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoint files in a folder, sorted by name; missing folder -> empty list."""
    folder = Path(folder)
    return sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file()) if folder.is_dir() else []
