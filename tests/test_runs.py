"""Run lifecycle with real worker processes: thread policy, stop, kill, orphans, the server-wide registry."""
import os
import time

import pytest
import torch

from aecore import runtime
from aecore.catalog import MODELS
from aecore.jobs import TrainingJob
from aecore.train import TrainConfig, build_seeded
from ui.state import RunRegistry
from ui.training import RunInfo
from waiting import wait_for


def conv_job(mnist, epochs=50, **kwargs):
    cfg = TrainConfig(epochs=epochs, batch_size=50, recon="mse")
    model = build_seeded(MODELS["conv_ae"].spec(mnist.shape), 0)
    return TrainingJob(model, mnist.train_x[:1000], mnist.test_x[:100], cfg, **kwargs)


# ---- thread policy ------------------------------------------------------------------------------------------


def test_the_cpu_budget_comes_from_affinity_and_the_cgroup_quota(tmp_path, monkeypatch):
    monkeypatch.delenv("AECORE_CPUS", raising=False)
    assert 1 <= runtime.cpu_budget() <= len(os.sched_getaffinity(0))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")  # a 1.5-CPU quota
    assert runtime.cgroup_cpu_limit(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert runtime.cgroup_cpu_limit(v2) is None
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert runtime.cgroup_cpu_limit(tmp_path / "v1") == 0.5
    monkeypatch.setenv("AECORE_CPUS", "3")
    assert runtime.cpu_budget() == 3


def test_the_budget_is_split_across_concurrent_runs():
    assert [runtime.threads_for(n, budget=4) for n in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    assert runtime.threads_for(2, budget=1) == 1


def test_a_block_narrows_the_threads_of_its_own_thread_only():
    """runtime.threads relies on PyTorch keeping the intra-op count per calling thread: a page narrowing it for a
    small-op fit must not narrow another visitor's script thread, and the count comes back after the block."""
    import threading

    runtime.use_threads(2)
    seen = {}

    def other():
        runtime.use_threads(2)
        started.set()
        narrowed.wait(10)
        seen["other"] = torch.get_num_threads()

    started, narrowed = threading.Event(), threading.Event()
    t = threading.Thread(target=other)
    t.start()
    started.wait(10)
    with runtime.threads(1):
        seen["inside"] = torch.get_num_threads()
        narrowed.set()
        t.join(10)
    assert seen == {"inside": 1, "other": 2} and torch.get_num_threads() == 2


def test_the_server_runs_numpy_and_scipy_blas_on_one_thread():
    """OpenBLAS's spinning threads doubled the Evaluation Lab's fit beside a busy process; the server limits both
    NumPy's and SciPy's BLAS (each wheel brings its own) to one thread."""
    import ast
    import subprocess
    import sys

    code = ("from aecore import runtime\nruntime.one_blas_thread()\nfrom threadpoolctl import threadpool_info\n"
            "print([i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    threads = ast.literal_eval(out.stdout.strip())
    assert threads and set(threads) == {1}, threads


def test_openmp_threads_spin_only_briefly_unless_the_user_chose(monkeypatch):
    for key in runtime.USER_CHOICE:
        monkeypatch.delenv(key, raising=False)
    assert runtime.prepare_openmp() is False, "torch is loaded already: too late for this process, and it says so"
    assert os.environ["GOMP_SPINCOUNT"] == "10000" and os.environ["KMP_BLOCKTIME"] == "1"
    for key in runtime.USER_CHOICE:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    runtime.prepare_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and "GOMP_SPINCOUNT" not in os.environ


def test_every_entry_point_sets_the_policy_before_torch_loads():
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in runtime.USER_CHOICE}
    for code in ("import aecore.jobs", "import aecore.__main__", "import bench.throughput"):
        probe = f"{code}\nimport os, sys; print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=".")
        assert out.stdout.split()[0] == runtime.SHORT_SPIN["GOMP_SPINCOUNT"], (code, out.stderr[-300:])
    first = open("app.py").read().split("import streamlit")[0]  # app.py runs only under Streamlit
    assert "import aecore" in first, "app.py imports aecore before streamlit and torch"


def test_a_worker_runs_with_the_threads_it_was_given_and_takes_a_new_share(mnist):
    job = conv_job(mnist, threads=1).start()
    assert wait_for(lambda: job.snapshot().step >= 2)
    job.set_threads(2)
    assert job.threads == 2
    job.stop()
    assert job.join(30) and job.snapshot().status == "stopped"


# ---- stop, kill, crash ----------------------------------------------------------------------------------------


def test_stop_shows_stopping_then_hands_over_the_weights_within_seconds(mnist):
    job = conv_job(mnist).start()
    assert wait_for(lambda: job.snapshot().step >= 3)
    initial = {k: v.clone() for k, v in job.model.state_dict().items()}
    t0 = time.monotonic()
    job.stop()
    assert job.snapshot().status == "stopping"
    assert job.join(30)
    assert time.monotonic() - t0 < 3.0, "the result is in within 3 s of Stop"
    snap = job.snapshot()
    assert snap.status == "stopped" and 3 <= snap.step < 1000
    changed = any(not torch.equal(initial[k], v) for k, v in job.model.state_dict().items())
    assert changed, "the parent's model holds the trained weights"


def test_a_killed_worker_keeps_the_last_finished_epoch_and_frees_the_process(mnist):
    job = conv_job(mnist).start()
    initial = {k: v.clone() for k, v in job.model.state_dict().items()}
    assert wait_for(lambda: job.snapshot().history.epoch, 120)  # one epoch done: its weights were sent
    job.kill("test")
    assert job.join(5)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.error == "test"
    assert wait_for(lambda: not job._process.is_alive(), 10)
    assert all(torch.isfinite(p).all() for p in job.model.parameters())
    assert any(not torch.equal(initial[k], v) for k, v in job.model.state_dict().items())


def test_a_worker_that_dies_is_reported_not_waited_for(mnist):
    job = conv_job(mnist).start()
    assert wait_for(lambda: job.snapshot().step >= 1)
    os.kill(job.pid, 9)  # as if the OS killed it for memory
    assert job.join(10)
    snap = job.snapshot()
    assert snap.status == "error" and "ended unexpectedly" in snap.error


def test_the_worker_evaluates_the_final_model_after_handing_it_over(mnist):
    from types import SimpleNamespace

    from aecore.metrics import evaluate_model

    cfg = TrainConfig(epochs=2, batch_size=100, recon="mse")
    model = build_seeded(MODELS["linear_ae"].spec(mnist.shape), 0)
    data = SimpleNamespace(train_x=mnist.train_x[:500], test_x=mnist.test_x[:100], train_y=mnist.train_y[:500],
                           test_y=mnist.test_y[:100])
    job = TrainingJob(model, data.train_x, data.test_x, cfg, labels=(data.train_y, data.test_y),
                      metrics_iw_samples=0).start()
    assert job.join(60) and job.snapshot().status == "done"
    assert wait_for(lambda: job.snapshot().metrics is not None, 60)
    metrics = job.snapshot().metrics
    here = evaluate_model(job.model, data, cfg, iw_samples=0)  # the same numbers, computed in this process
    assert metrics["test_images"] == 100 and set(metrics) == set(here)
    for key in ("mse", "psnr", "ssim", "objective_loss"):
        assert metrics[key] == pytest.approx(here[key], rel=1e-4), key


# ---- the registry ---------------------------------------------------------------------------------------------


def test_the_registry_caps_runs_and_frees_a_slot_when_one_ends(mnist):
    registry = RunRegistry(limit=1, orphan_after_s=600, background=False)
    first = RunInfo(conv_job(mnist), "conv_ae", "mnist-5k", TrainConfig())
    assert registry.reserve(first)
    first.job.start()
    second = RunInfo(conv_job(mnist), "conv_ae", "mnist-5k", TrainConfig())
    assert not registry.reserve(second), "the server is full"
    assert registry.get(first.run_id) is first and registry.get("guess") is None
    first.request_stop()
    assert first.job.join(30)
    assert registry.reserve(second), "the slot is free again"


def test_an_unwatched_run_is_stopped_and_one_that_ignores_stop_is_killed(mnist):
    registry = RunRegistry(limit=2, orphan_after_s=0.5, kill_after_s=0.5, background=False)
    run = RunInfo(conv_job(mnist), "conv_ae", "mnist-5k", TrainConfig())
    assert registry.reserve(run)
    run.job.start()
    assert wait_for(lambda: run.job.snapshot().step >= 1)
    registry.heartbeat(run.run_id)
    registry.reap()
    assert run.stop_requested is None, "watched: left alone"
    registry.reap(now=time.monotonic() + 0.6)  # as if 0.6 s passed with no page polling it
    assert run.stop_requested is not None and run.stop_reason == "nobody was watching it"
    assert run.job.join(30) and registry.running() == 0
    # a run whose worker does not stop (simulated by a stop that never arrives) is ended outright
    stuck = RunInfo(conv_job(mnist), "conv_ae", "mnist-5k", TrainConfig())
    assert registry.reserve(stuck)
    stuck.job.start()
    assert wait_for(lambda: stuck.job.snapshot().step >= 1)
    stuck.stop_requested = time.monotonic() - 1.0  # Stop was asked a while ago and the run is still going
    registry.reap()
    assert stuck.job.join(5) and stuck.job.snapshot().error == "it did not stop in time and was ended"


@pytest.mark.parametrize("runs", [1, 2])
def test_the_registry_shares_the_budget_among_running_runs(mnist, runs, monkeypatch):
    monkeypatch.setenv("AECORE_CPUS", "2")
    registry = RunRegistry(limit=4, orphan_after_s=600, background=False)
    started = []
    for _ in range(runs):
        run = RunInfo(conv_job(mnist), "conv_ae", "mnist-5k", TrainConfig())
        assert registry.reserve(run)
        run.job.start()
        started.append(run)
    registry.reap()
    assert [r.job.threads for r in started] == [2 // runs] * runs
    for r in started:
        r.request_stop()
    assert all(r.job.join(30) for r in started)


def test_the_allocator_tweak_stays_out_of_processes_that_only_use_the_library():
    """mallopt changes the whole process's allocator: the app's workers and `train` set it, a library user's (or the
    server's) process that calls fit() does not."""
    import subprocess
    import sys

    code = ("import aecore, torch\nfrom aecore import runtime\nfrom aecore.catalog import MODELS\n"
            "from aecore.fit import fit\nfrom aecore.train import build_seeded\n"
            "x = torch.rand(64, 1, 28, 28)\np = MODELS['linear_ae']\n"
            "fit(build_seeded(p.spec((1, 28, 28)), 0), x, x[:8], p.config(epochs=1, batch_size=32))\n"
            "print(runtime._malloc_tuned)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(runtime._glibc() is None, reason="the allocator calls are glibc's; elsewhere they do nothing")
def test_the_server_hands_freed_heap_pages_back_after_a_rerun():
    """The app calls release_freed_memory() after each rerun. 200 freed 1 MB blocks that the allocator would keep (as
    a rerun leaves them) must leave the process's resident memory when it is called."""
    import subprocess
    import sys

    code = ("from aecore import runtime\nimport torch\nruntime.keep_freed_memory()  # freed blocks stay in the heap\n"
            "def rss():\n    return int(next(v for v in open('/proc/self/status') if 'VmRSS' in v).split()[1])\n"
            "blocks = [torch.ones(256 * 1024) for _ in range(200)]\ndel blocks\nkept = rss()\n"
            "runtime.release_freed_memory()\nprint((kept - rss()) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 100, f"only {out.stdout.strip()} MB handed back of 200 MB freed"


def test_training_keeps_the_process_thread_count_for_every_model(mnist):
    """No model is put on one thread any more: with the 10,000-spin wait, two threads train even the linear AE faster
    (1.2 vs 1.4 ms a step on AVX2 kernels, 2026-12-03); the app's workers still fall back to one under load."""
    from aecore.fit import fit

    torch.set_num_threads(2)
    for name in ("linear_ae", "mlp_vae", "conv_vae"):
        preset, seen = MODELS[name], []
        cfg = preset.config(epochs=1, batch_size=100, max_steps=2)
        fit(build_seeded(preset.spec(mnist.shape), 0), mnist.train_x[:200], mnist.test_x[:20], cfg,
            on_event=lambda e: seen.append(torch.get_num_threads()))
        assert set(seen) == {2}, name


def test_workers_fork_from_a_server_that_has_already_built_an_optimizer():
    """The first optimizer imports torch._dynamo (~1 s): the fork server does it once (aecore/preload.py), not every
    run after Start."""
    from aecore import jobs

    ctx = jobs._context()
    if ctx.get_start_method() != "forkserver":
        pytest.skip("no fork server on this platform: workers are spawned")
    out = ctx.Queue()
    probe = ctx.Process(target=exec, args=("import sys; out.put('torch._dynamo' in sys.modules)", {"out": out}))
    probe.start()
    try:
        assert out.get(timeout=60) is True, "a worker would import torch._dynamo after Start"
    finally:
        probe.join(10)


@pytest.mark.parametrize("faster", [1, 2])
def test_the_thread_tuner_keeps_whichever_count_steps_faster_and_probes_again(faster):
    """The app's workers time their own steps on the budget and on one thread (runtime.ThreadTuner)."""
    tuner = runtime.ThreadTuner(probe=4, cycle=20)
    now, used = 0.0, []
    for _ in range(45):
        n = tuner.after_step(now, 2)
        used.append(n)
        now += 1.0 if n == faster else 1.6  # the step about to run takes this long
    assert used[:4] == [2] * 4 and used[4:8] == [1] * 4, "probes the budget, then one thread"
    assert set(used[8:20]) == {faster}, "then keeps the faster"
    assert used[20:24] == [2] * 4 and used[24:28] == [1] * 4, "and probes again each cycle"
    assert set(runtime.ThreadTuner().after_step(t, 1) for t in range(30)) == {1}, "a budget of 1 is 1"


def test_the_server_warms_up_without_torch_dynamo_and_freezes_the_heap():
    """The warm-up (measure the paths, load the models, the Lab's reconstructions) must not import torch._dynamo: with
    triton that is ~150 MB of the 1 GB a small deployment has; nor sympy (torch.fx's symbolic shapes, 35 MB, which
    `tensor.backward(gradient)` imports). Then it freezes the heap, so Streamlit's full
    collection after every rerun skips those ~500k objects."""
    import subprocess
    import sys

    code = ("import sys\nfrom ui import state\nstate.warm_up()\nimport gc\n"
            "print('torch._dynamo' in sys.modules or 'sympy' in sys.modules, 'torchvision' in sys.modules,"
            " gc.get_freeze_count() > 100_000)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "False False True", "no torch._dynamo or sympy, no torchvision, heap frozen"


