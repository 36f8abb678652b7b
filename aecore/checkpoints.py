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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from .models import Autoencoder, ModelSpec, SpecError, build_model
from .train import History, TrainConfig

FORMAT, VERSION = "aecore-checkpoint", 1
SUFFIX = ".pt"


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

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    def meta(self) -> dict:
        return {"model_name": self.model_name, "dataset": self.dataset, "spec": self.spec.to_dict(),
                "config": self.config.to_dict(), "history": self.history.to_dict(), "metrics": self.metrics,
                "extra": self.extra, "created": self.created}


def to_bytes(ckpt: Checkpoint) -> bytes:
    """The checkpoint file's contents (for a download button)."""
    state = {k: v.detach().cpu().contiguous() for k, v in ckpt.model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "meta": json.dumps(ckpt.meta()), "state_dict": state}, buf)
    return buf.getvalue()


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
    """Load from a path or raw bytes; any problem becomes a CheckpointError, never an exception trace."""
    label = name or (Path(source).name if not isinstance(source, bytes) else "the uploaded file")
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise CheckpointError(f"{source}: no such checkpoint file")
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        payload = torch.load(stream, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{label} is not a readable aecore checkpoint (refused or corrupt: {reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{label} is a PyTorch file but not an aecore checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{label} has checkpoint version {payload.get('version')}, this aecore reads {VERSION}")
    try:
        meta = json.loads(payload["meta"])
        spec = ModelSpec.from_dict(meta["spec"])
        config = TrainConfig.from_dict(meta["config"])
        model = build_model(spec)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, json.JSONDecodeError, SpecError, ValueError) as e:
        raise CheckpointError(f"{label} has missing or invalid metadata ({type(e).__name__}: {e})") from None
    except RuntimeError as e:  # load_state_dict: shapes or names do not match the spec
        first = str(e).strip().splitlines()[0][:160]
        raise CheckpointError(f"{label}: weights do not match its model spec ({first})") from None
    model.eval()
    return Checkpoint(model, meta.get("model_name", spec.family), meta.get("dataset", "?"), config,
                      History.from_dict(meta.get("history", {})), meta.get("metrics", {}), meta.get("extra", {}),
                      meta.get("created", ""))


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoint files in a folder, sorted by name; missing folder -> empty list."""
    folder = Path(folder)
    return sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file()) if folder.is_dir() else []
