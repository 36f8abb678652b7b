import json
import subprocess
import sys

import pytest


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "aecore", *args], capture_output=True, text=True, timeout=timeout)


def test_train_then_eval_end_to_end_on_the_bundled_data(tmp_path):
    out = tmp_path / "x.pt"
    r = cli("train", "--model", "conv_vae", "--dataset", "mnist-5k", "--epochs", "1", "--max-steps", "20",
            "--iw-samples", "5", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert out.is_file() and "neg_elbo" in r.stdout
    r = cli("eval", str(out), "--json", "--iw-samples", "5")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    m = report["metrics"]
    assert report["model"] == "conv_vae" and m["parameters"] == 96_677
    assert abs(m["neg_elbo"] - (m["recon_nats"] + m["kl_nats"])) < 1e-3
    assert 50 < m["iw_nll_k5"] <= m["neg_elbo"] + 1.0  # the IW bound is at least as tight as the ELBO
    # the IW-NLL's progress goes to stderr (stdout stays one JSON object); --quiet turns it off
    assert "IW-NLL, k = 5" in r.stderr and "/1000 [" in r.stderr
    quiet = cli("eval", str(out), "--json", "--iw-samples", "5", "--quiet")
    assert quiet.returncode == 0 and "IW-NLL" not in quiet.stderr
    assert json.loads(quiet.stdout)["metrics"]["iw_nll_k5"] == m["iw_nll_k5"]
    # as text, every other metric is printed before the IW-NLL starts (it is most of the time); each one once
    text = cli("eval", str(out), "--iw-samples", "5", "--quiet")
    names = [line.split()[0] for line in text.stdout.splitlines()[1:]]
    assert text.returncode == 0 and names[-1] == "iw_nll_k5" and "probe_accuracy" in names
    assert sorted(names) == sorted(k for k, v in m.items() if not isinstance(v, list))


def test_adapt_threads_times_the_steps_on_one_thread_too_and_records_where_they_ran(tmp_path):
    from aecore.checkpoints import load_checkpoint
    from aecore.runtime import cpu_budget

    runs = {}
    for flag in ([], ["--adapt-threads"]):
        out = tmp_path / f"{len(flag)}.pt"
        r = cli("train", "--model", "conv_vae", "--epochs", "1", "--max-steps", "20", "--iw-samples", "0",
                "--out", str(out), "--quiet", *flag)
        assert r.returncode == 0, r.stderr
        runs[bool(flag)] = load_checkpoint(out).extra
    assert "thread_steps" not in runs[False]  # the default stays on the budget: reproducible
    steps, budget = runs[True]["thread_steps"], cpu_budget()
    assert sum(steps.values()) == 20
    if budget == 1:
        assert steps == {"1": 20}
    else:  # steps 2-7 on the budget, 8-13 on one thread (ThreadTuner's probes), then the faster of the two
        assert steps.get("1", 0) >= 6 and steps.get(str(budget), 0) >= 7 and set(steps) == {"1", str(budget)}


def test_denoising_eval_reports_noisy_and_denoised_psnr(tmp_path):
    out = tmp_path / "d.pt"
    r = cli("train", "--model", "linear_ae", "--epochs", "4", "--batch-size", "32", "--lr", "3e-3",
            "--noise", "gaussian:0.3",
            "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads(cli("eval", str(out), "--json").stdout)["metrics"]
    assert m["noise"] == "gaussian:0.3" and m["denoised_psnr"] > m["noisy_input_psnr"]
    assert {"mse", "psnr", "ssim", "probe_accuracy"} <= set(m)


def test_list_shows_models_datasets_and_offline_status():
    r = cli("list")
    assert r.returncode == 0
    assert "conv_vae" in r.stdout and "mnist-5k" in r.stdout and "bundled" in r.stdout


@pytest.mark.parametrize("args, words", [
    (["train", "--model", "nope", "--out", "x.pt"], "unknown model"),
    (["train", "--model", "conv_vae", "--epochs", "0", "--out", "x.pt"], "epochs"),
    (["train", "--model", "conv_vae", "--dataset", "imagenet", "--out", "x.pt"], "imagenet"),
    (["train", "--model", "conv_vae", "--noise", "fog:2", "--out", "x.pt"], "noise"),
    (["train", "--model", "conv_vae", "--epochs", "many", "--out", "x.pt"], "invalid int"),
    (["train", "--model", "conv_vae", "--dataset", "digits", "--latent-dim", "0", "--out", "x.pt"], "latent"),
    (["eval", "missing.pt"], "no such"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_nonzero_with_one_clear_line(args, words):
    r = cli(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr


def test_bad_checkpoint_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    r = cli("eval", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not a readable" in r.stderr


def test_keep_best_selects_the_epoch_with_the_lowest_validation_loss(tmp_path):

    from aecore.checkpoints import load_checkpoint

    out = tmp_path / "v.pt"
    r = cli("train", "--model", "linear_ae", "--epochs", "3", "--val-split", "0.1", "--keep-best", "--iw-samples", "0",
            "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(out)
    val = ckpt.history.val["loss"]
    assert len(val) == 3 and ckpt.extra["validation_images"] == 400
    assert ckpt.extra["selected_epoch"] == 1 + min(range(3), key=val.__getitem__)
    # the stored metrics are what `eval` says: the probe learns from the whole training split, not the carved one
    evaluated = json.loads(cli("eval", str(out), "--json", "--iw-samples", "0").stdout)["metrics"]
    assert evaluated["probe_accuracy"] == pytest.approx(ckpt.metrics["probe_accuracy"], abs=1e-9)
    assert cli("train", "--model", "linear_ae", "--keep-best", "--out", str(out)).returncode == 2


def test_refit_retrains_on_every_training_image_for_the_epochs_chosen_on_validation(tmp_path):
    from aecore.checkpoints import load_checkpoint

    common = ["train", "--model", "linear_ae", "--iw-samples", "0", "--quiet"]
    refit, plain = tmp_path / "refit.pt", tmp_path / "plain.pt"
    r = cli(*common, "--epochs", "4", "--val-split", "0.1", "--keep-best", "--refit", "--out", str(refit))
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(refit)
    val = ckpt.extra["selection"]["val_loss"]
    chosen = 1 + min(range(4), key=val.__getitem__)
    assert len(val) == 4 and ckpt.extra["selected_epoch"] == chosen and ckpt.extra["refit_images"] == 4000
    assert ckpt.history.epoch == list(range(1, chosen + 1)) and not ckpt.history.val
    # with a constant learning rate the refit is exactly a plain run of that many epochs on the whole split
    assert cli(*common, "--epochs", str(chosen), "--out", str(plain)).returncode == 0
    assert ckpt.history.test["loss"] == load_checkpoint(plain).history.test["loss"]
    assert cli(*common, "--refit", "--val-split", "0.1", "--out", str(refit)).returncode == 2
