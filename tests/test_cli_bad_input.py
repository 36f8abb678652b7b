"""The CLI on bad input: exit status 2 and one clear line on stderr, never a traceback; nothing trained is lost.

Most cases call `main()` in-process (a refused argument costs no interpreter start); a few run `python -m aecore`
as a user would, to see the whole stderr. Training runs are tiny real runs on the bundled data.
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from aecore import __main__ as cli
from aecore import checkpoints
from aecore.catalog import MODELS
from aecore.losses import RECON_LOSSES
from aecore.models import UPSAMPLE_MODES
from aecore.train import DEVICES, TrainingError, pick_device

TINY = ["--max-steps", "2", "--max-train", "200", "--iw-samples", "0", "--quiet"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(autouse=True)
def keep_threads():
    """main() sets torch's thread count for its process, here pytest's: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_line(code, err, *words, status=2):
    assert code == status, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err
    return lines[0]


@pytest.fixture
def no_training(monkeypatch):
    """Refusals must come before training: reaching it fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started although the input was bad")
    monkeypatch.setattr(cli, "_fit", refuse)


# --- 4: numbers out of range, refused at parse time with the option's name (or by the library's own bounds)
@pytest.mark.parametrize("args, words", [
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--seed", str(2**63)], ["--seed", str(2**63)]),
    (["--seed", "1.5"], ["--seed", "invalid int"]),
    (["--iw-samples", "-1"], ["--iw-samples"]),
    (["--epochs", "0"], ["--epochs"]),
    (["--epochs", "-5"], ["--epochs", "-5"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--lr", "nan"], ["--lr", "finite"]),
    (["--lr", "inf"], ["--lr", "finite"]),
    (["--lr", "-1"], ["--lr"]),
    (["--lr", "0"], ["--lr"]),
    (["--lr", "50"], ["learning rate"]),  # TrainConfig's upper bound
    (["--latent-dim", "0"], ["--latent-dim"]),
    (["--latent-dim", "-1"], ["--latent-dim"]),
    (["--latent-dim", str(10**9)], ["latent", str(10**9)]),  # ModelSpec's upper bound
    (["--max-steps", "0"], ["--max-steps"]),
    (["--max-train", "0"], ["--max-train"]),
    (["--val-split", "1.5"], ["--val-split"]),
    (["--val-split", "1"], ["--val-split"]),
    (["--val-split", "-0.1"], ["--val-split"]),
    (["--val-split", "nan"], ["--val-split"]),
    (["--beta", "nan"], ["--beta"]),
    (["--beta", "-1"], ["--beta"]),
    (["--sparsity", "inf"], ["--sparsity"]),
    (["--noise", "gaussian:inf"], ["--noise", "gaussian"]),
    (["--noise", "gaussian:abc"], ["--noise", "abc"]),
    (["--noise", "bogus:0.1"], ["--noise", "bogus", "gaussian"]),
])
def test_numbers_out_of_range_are_refused_before_training(args, words, tmp_path, capsys, no_training):
    out = tmp_path / "x.pt"
    one_line(*run(capsys, "train", "--model", "linear_ae", *args, "--out", out), *words)
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["train", "--model", "nope"], ["unknown model 'nope'", *MODELS]),
    (["train", "--model", "linear_ae", "--dataset", "imagenet"], ["imagenet", "mnist-5k", "digits"]),
    (["train", "--model", "conv_ae", "--upsample", "sideways"], ["sideways", *UPSAMPLE_MODES]),
    (["train", "--model", "conv_ae", "--recon", "huber"], ["huber", *RECON_LOSSES]),
    (["eval", "x.pt", "--dataset", "imagenet"], ["imagenet", "mnist-5k"]),
    (["eval", "x.pt", "--iw-samples", "-3"], ["--iw-samples"]),
])
def test_unknown_names_list_the_valid_ones(args, words, tmp_path, capsys, no_training):
    one_line(*run(capsys, *args, *(["--out", tmp_path / "x.pt"] if args[0] == "train" else [])), *words)


def test_choices_come_from_the_catalogues(monkeypatch):
    parse = cli.build_parser().parse_args
    for name in MODELS:
        assert parse(["train", "--model", name, "--out", "x.pt"]).model == name
    for option, values in (("--upsample", UPSAMPLE_MODES), ("--recon", RECON_LOSSES), ("--device", DEVICES)):
        for value in values:
            parse(["train", "--model", "conv_ae", option, value, "--out", "x.pt"])
    # a model added to the catalogue is accepted without touching the CLI
    monkeypatch.setitem(MODELS, "tiny_ae", MODELS["linear_ae"])
    assert parse(["train", "--model", "tiny_ae", "--out", "x.pt"]).model == "tiny_ae"


# --- 1: a destination that cannot take the checkpoint is refused before training
def test_an_existing_folder_as_out_is_refused(tmp_path, capsys, no_training):
    for folder in (tmp_path / "plain", tmp_path / "looks_like.pt"):
        folder.mkdir()
        one_line(*run(capsys, "train", "--model", "linear_ae", "--out", folder), "is a folder", str(folder))
        assert folder.is_dir() and not any(folder.iterdir())


@pytest.mark.parametrize("below", ["x.pt", "a/b/x.pt"])
def test_a_path_under_a_regular_file_is_refused(below, tmp_path, capsys, no_training):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("keep me")
    one_line(*run(capsys, "train", "--model", "linear_ae", "--out", blocker / below),
             f"{blocker} is a file, not a folder")
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("length", [300, 250])  # 300: over the OS's 255 bytes; 250: no room for the temp name
def test_a_file_name_too_long_for_the_file_system_is_refused(length, tmp_path, capsys, no_training):
    out = tmp_path / ("a" * (length - 3) + ".pt")
    line = one_line(*run(capsys, "train", "--model", "linear_ae", "--out", out))
    assert "long" in line and not list(tmp_path.iterdir())  # nothing written, not even the probe


@pytest.mark.skipif(IS_ROOT, reason="root writes into a 0o555 folder anyway; the simulated case below covers it")
def test_a_read_only_folder_is_refused(tmp_path, capsys, no_training):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        one_line(*run(capsys, "train", "--model", "linear_ae", "--out", folder / "x.pt"), "not writable", str(folder))
    finally:
        folder.chmod(0o755)


def test_a_folder_that_refuses_files_is_refused(tmp_path, capsys, monkeypatch, no_training):
    """What a read-only folder does, for root too: creating the probe file fails with EACCES."""
    def denied(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / "probe"))
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    one_line(*run(capsys, "train", "--model", "linear_ae", "--out", tmp_path / "x.pt"), "not writable",
             "Permission denied")


def test_out_folders_are_still_created_and_the_run_succeeds(tmp_path, capsys):
    out = tmp_path / "new" / "sub" / "m.pt"
    code, err = run(capsys, "train", "--model", "linear_ae", *TINY, "--out", out)
    assert code == 0 and err == "" and checkpoints.load_checkpoint(out).model_name == "linear_ae"
    assert [p.name for p in out.parent.iterdir()] == ["m.pt"]  # the probe file is gone


# --- 2: a save that fails after training keeps the checkpoint in the temp folder
@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))  # tempfile.gettempdir() answers this
    return folder


def test_a_full_disk_at_save_time_rescues_the_checkpoint(tmp_path, temp_dir, capsys, monkeypatch):
    real, calls = checkpoints.save_checkpoint, []

    def full_once(ckpt, path):
        calls.append(Path(path))
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(ckpt, path)
    monkeypatch.setattr(checkpoints, "save_checkpoint", full_once)
    out = tmp_path / "m.pt"
    line = one_line(*run(capsys, "train", "--model", "linear_ae", *TINY, "--out", out), "No space left on device",
                    status=1)
    rescued = calls[1]
    assert calls[0] == out and not out.exists()
    assert rescued.parent == temp_dir and rescued.name.startswith("aecore-rescued-") and str(rescued) in line
    ckpt = checkpoints.load_checkpoint(rescued)
    assert ckpt.model_name == "linear_ae" and ckpt.metrics["parameters"] > 0


def test_a_folder_replaced_during_training_rescues_the_checkpoint(tmp_path, temp_dir, capsys, monkeypatch):
    folder, real_fit = tmp_path / "runs", cli._fit

    def fit_then_break_the_folder(*args, **kwargs):
        result = real_fit(*args, **kwargs)
        shutil.rmtree(folder)
        folder.write_text("a file where the folder was")
        return result
    monkeypatch.setattr(cli, "_fit", fit_then_break_the_folder)
    line = one_line(*run(capsys, "train", "--model", "linear_ae", *TINY, "--out", folder / "m.pt"),
                    "could not write", "kept in", status=1)
    (rescued,) = temp_dir.glob("aecore-rescued-*.pt")
    assert str(rescued) in line and checkpoints.load_checkpoint(rescued).model_name == "linear_ae"


def test_when_the_rescue_fails_too_the_line_says_so(tmp_path, temp_dir, capsys, monkeypatch):
    def always_full(ckpt, path):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoints, "save_checkpoint", always_full)
    one_line(*run(capsys, "train", "--model", "linear_ae", *TINY, "--out", tmp_path / "m.pt"), "lost", status=1)


# --- 3: a device that is not here
@pytest.mark.parametrize("device, available", [
    ("mps", lambda: getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()),
    ("cuda", torch.cuda.is_available),
])
def test_a_missing_device_is_one_line(device, available, tmp_path, capsys, no_training):
    if available():
        pytest.skip(f"{device} is available here")
    with pytest.raises(TrainingError, match=device):
        pick_device(device)
    one_line(*run(capsys, "train", "--model", "linear_ae", "--device", device, "--out", tmp_path / "x.pt"),
             f"'{device}'", "--device cpu")


# --- 5: a run that ends in NaN still writes the last good weights
def test_a_nan_loss_writes_the_last_good_weights(tmp_path, capsys):
    # mlp_vae at lr 1: epoch 1 (2 steps of 100) stays finite, step 4 overflows the KL term to inf / NaN
    out = tmp_path / "nan.pt"
    line = one_line(*run(capsys, "train", "--model", "mlp_vae", "--lr", "1", "--batch-size", "100", "--max-train",
                         "200", "--epochs", "5", "--iw-samples", "0", "--quiet", "--out", out),
                    "NaN", str(out), status=1)
    assert "Wrote" in line
    ckpt = checkpoints.load_checkpoint(out)  # loads: its weights are finite (load_checkpoint checks)
    epochs = ckpt.history.epoch
    assert 1 <= len(epochs) < 5 and epochs == list(range(1, len(epochs) + 1)) and "NaN" in ckpt.extra["stopped"]
    assert all(math.isfinite(v) for v in ckpt.history.step_loss) and math.isfinite(ckpt.metrics["neg_elbo"])


def test_a_nan_loss_in_the_first_epoch_writes_nothing(tmp_path, capsys):
    out = tmp_path / "nan.pt"
    one_line(*run(capsys, "train", "--model", "mlp_vae", "--lr", "5", "--batch-size", "50", "--max-train", "200",
                  "--iw-samples", "0", "--quiet", "--out", out), "NaN", "Nothing was written")
    assert not out.exists()


def test_a_failing_evaluation_still_writes_the_trained_weights(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the metrics")
    monkeypatch.setattr(cli, "evaluate_model", broken)
    out = tmp_path / "m.pt"
    with pytest.raises(RuntimeError, match="a bug"):  # a bug keeps its traceback ...
        cli.main(["train", "--model", "linear_ae", *TINY, "--out", str(out)])
    assert "without metrics" in capsys.readouterr().err  # ... and the weights are written first
    assert checkpoints.load_checkpoint(out).metrics == {}


# --- 6: only user-facing errors become one line; a bug keeps its traceback
@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("a bug"), ZeroDivisionError("a bug")])
def test_a_genuine_bug_keeps_its_traceback(bug, monkeypatch):
    def broken(args):
        raise bug
    monkeypatch.setattr(cli, "cmd_list", broken)
    with pytest.raises(type(bug)):
        cli.main(["list"])


def test_file_system_errors_are_one_line(monkeypatch, capsys):
    def unreadable(args):
        raise PermissionError(13, "Permission denied", "/data/cache")
    monkeypatch.setattr(cli, "cmd_list", unreadable)
    one_line(*run(capsys, "list"), "Permission denied", "/data/cache")


# --- the whole stderr of a real `python -m aecore`, as a user sees it
@pytest.mark.parametrize("args", [["--seed", str(2**63)], ["--noise", "gaussian:inf"], ["--out-under-a-file"]],
                         ids=["seed", "noise", "out"])
def test_from_the_shell_bad_input_is_one_line(args, tmp_path):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("")
    out = blocker / "x.pt" if args == ["--out-under-a-file"] else tmp_path / "x.pt"
    args = [] if args == ["--out-under-a-file"] else args
    r = subprocess.run([sys.executable, "-m", "aecore", "train", "--model", "linear_ae", *args, "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.stdout == ""
    one_line(r.returncode, r.stderr, "aecore: error:")
