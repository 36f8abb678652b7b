"""Process-wide settings in one place: how much CPU this process may use, how its threads wait, and (training
processes only) how its allocator keeps freed memory.

Three facts shape it (issue #10, measured on 2-core AMD EPYCs):
- `os.cpu_count()` counts the host's CPUs, not the ones this process may use. A container (Streamlit Community
  Cloud, Docker, Kubernetes) gets fewer through its affinity mask or a CFS quota (cgroup v2 `cpu.max`, v1
  `cpu.cfs_quota_us`); more threads than that only time-slice against each other.
- OpenMP threads spin at every barrier before they sleep (libgomp: 300,000 spins by default). On a CPU shared with
  other work (the Streamlit server, a browser, a second run) a spinning thread burns the time slice its partner
  needs: the conv VAE trained at 80-224 images/s with 2 threads under load. Sleeping at once
  (`OMP_WAIT_POLICY=PASSIVE`) fixes that but costs small models dearly when the CPU is free: every one of their
  many tiny parallel regions then waits for a wake-up (linear AE 24k vs 65k images/s, MLP VAE 7k vs 12k). A short
  spin keeps both: bench/contention.py, conv VAE with one busy neighbour: spin 0.27-0.43x of quiet, 1,000 spins
  0.51-0.53x, passive 0.52-0.68x. 10,000 spins (tens of microseconds: longer than the Python between two ops of a
  step, so the partner is still awake for the next one) trains the conv VAE 23 % faster than 1,000 at batch 32
  and 9 % at batch 100 (AVX2 kernels, 2026-12-03), at 1-3 % of the images/s beside one or two busy neighbours
  and with two runs at once (`contention.py --policies brief1k,brief`). `KMP_BLOCKTIME=1` (ms) does the same
  for LLVM's OpenMP (macOS wheels). These are read once, when the OpenMP library loads with torch, so they must
  be set before the first `import torch`:
  `aecore/__init__.py` calls `prepare_openmp()`, and every entry point (app, CLI, training workers, benchmarks)
  imports `aecore` first.
- Concurrent runs share the budget: each gets `threads_for(runs)`.

`AECORE_CPUS=N` overrides the detected budget (benchmarks, or a deployment that knows better).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import sys
from pathlib import Path

# Images (or codes) per inference pass: a conv model's activations for 100 images fit the caches; the conv VAE's
# decoder ran 10.5k codes/s at 50-100 a pass and 3.7k at 2,000 (2026-12-03, 2 cores), and IW-NLL, evaluation,
# reconstruction, encoding and decoding all batch by it.
INFER_BATCH = 100
SHORT_SPIN = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"}  # libgomp (Linux wheels), LLVM libomp (macOS)
USER_CHOICE = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def prepare_openmp() -> bool:
    """Make idle OpenMP threads spin only briefly before they sleep. Must run before torch is first imported;
    returns whether it was in time. A wait policy the user set (any of USER_CHOICE) wins."""
    if not any(k in os.environ for k in USER_CHOICE):
        os.environ.update(SHORT_SPIN)
    return "torch" not in sys.modules


def _affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def _cgroup_dirs(root: Path) -> list[Path]:
    """This process's cgroup directories (v2 unified path, v1 cpu controller path), then the root."""
    dirs = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "" or "cpu" in controllers.split(","):
                for base in (root, root / "cpu", root / "cpu,cpuacct"):
                    dirs.append(base / path.lstrip("/"))
    except (OSError, ValueError):
        pass
    return dirs + [root, root / "cpu", root / "cpu,cpuacct"]


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the CFS quota (cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`), None when unlimited."""
    for d in _cgroup_dirs(root):
        try:
            quota, period = (d / "cpu.max").read_text().split()[:2]
            if quota != "max":
                return int(quota) / int(period)
            return None
        except (OSError, ValueError):
            pass
        try:
            quota = int((d / "cpu.cfs_quota_us").read_text())
            period = int((d / "cpu.cfs_period_us").read_text())
            return quota / period if quota > 0 and period > 0 else None
        except (OSError, ValueError):
            pass
    return None


def cpu_budget() -> int:
    """CPUs this process may really use: the affinity mask, capped by the cgroup quota (rounded up: a 1.5-CPU
    quota still runs 2 threads well), or AECORE_CPUS. At least 1."""
    override = os.environ.get("AECORE_CPUS", "").strip()
    if override.isdigit() and int(override) >= 1:
        return int(override)
    cpus = _affinity_cpus()
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit - 0.1)))
    return max(1, cpus)


def threads_for(concurrent_runs: int = 1, budget: int | None = None) -> int:
    """Intra-op threads for one of `concurrent_runs` runs sharing the budget (at least 1 each)."""
    budget = cpu_budget() if budget is None else budget
    return max(1, budget // max(1, concurrent_runs))


def use_threads(n: int) -> int:
    """Set torch's intra-op thread count for this process; returns it."""
    import torch

    n = max(1, int(n))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def threads(n: int):
    """torch's intra-op threads set to n for this block, then restored. PyTorch's OpenMP backend keeps the count per
    thread (a thread takes the latest value when it first runs an op), so a page's script thread can narrow its own
    without narrowing other visitors' running scripts (a thread that starts during the block may begin with n).
    For work made of many small ops (a few thousand elements each): there a second thread buys nothing quiet and,
    beside a busy process, every op waits for the thread whose core is taken."""
    import torch

    before = torch.get_num_threads()
    use_threads(n)
    try:
        yield
    finally:
        use_threads(before)


class ThreadTuner:
    """Thread count for a run on a shared machine (the app's run workers), chosen by timing its own steps.

    A second thread wins on a quiet machine and loses beside a busy neighbour: each parallel step waits for the
    thread whose core is shared (conv VAE on the 2-core Xeon, 2026-12-02: 0.23x of quiet on 2 threads beside one
    busy process, 0.56x on 1). So every `cycle` steps the run times `probe` steps on its budget and `probe` on one
    thread (the first after each switch is not counted) and keeps the faster until the next cycle. Thread counts
    change float summation order, so this is for the app only; `python -m aecore train` stays reproducible."""

    def __init__(self, probe: int = 6, cycle: int = 150):
        self.probe, self.cycle = probe, cycle
        self.step, self.last, self.current, self.choice = 0, None, None, None
        self.times: dict[int, list[float]] = {}

    def after_step(self, now: float, budget: int) -> int:
        """Call after every training step with the clock; returns the thread count for the next step."""
        if self.last is not None and self.current is not None and self.step % self.cycle not in (1, self.probe + 1):
            self.times.setdefault(self.current, []).append(now - self.last)
        self.last = now
        i, self.step = self.step % self.cycle, self.step + 1
        if budget <= 1:
            wanted = 1
        elif i < self.probe:
            wanted = budget
        elif i < 2 * self.probe:
            wanted = 1
        else:
            if i == 2 * self.probe or self.choice is None:
                med = {n: sorted(t)[len(t) // 2] for n, t in self.times.items() if t}
                self.choice = min(med, key=med.get) if len(med) == 2 else budget
                self.times = {}
            wanted = min(self.choice, budget)
        self.current = wanted
        return wanted


def describe() -> dict:
    """What the policy sees, for benchmarks and the CLI's `list`."""
    return {"cpu_budget": cpu_budget(), "affinity_cpus": _affinity_cpus(), "cgroup_cpus": cgroup_cpu_limit(),
            "openmp_wait": {k: os.environ[k] for k in USER_CHOICE if k in os.environ} or "library default"}


def one_blas_thread() -> None:
    """NumPy's and SciPy's BLAS (OpenBLAS) on one thread; for the app server, once at start. Its BLAS work is small
    (scipy's L-BFGS-B in the Evaluation Lab's fits, scikit-learn's probes on 2-20-D codes), and OpenBLAS's
    spinning threads doubled the fit's time beside a busy process: 0.41-0.49 s against 0.21-0.26 s on one thread
    (2-core Xeon VM, 2026-12-03). torch's own threads are use_threads()'s."""
    import scipy.linalg  # noqa: F401  (loads SciPy's own OpenBLAS, so the limit reaches it as well as NumPy's)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


# ---- the allocator: keep freed activation memory for the next step (training processes only) ------------------
# glibc hands large blocks back to the OS as soon as they are freed (mmap'd blocks, heap trimming), so every
# step of a conv model touches tens of MB of fresh pages: ~10,000 page faults per conv VAE step (batch 100,
# channels_last), 20-25 % of the step. Raising the two thresholds once keeps that memory in the process for
# reuse; blocks above 32 MB still go to mmap, and at most 256 MB of free heap is kept. It is process-wide, so only
# processes that exist to train or evaluate call it: the app's run workers (worker.py), `python -m aecore train`
# and `eval`, never the server or a library user's process. (Evaluation too: without it, the same decode of 100
# codes by the z = 2 bilinear VAE took 17 or 27-29 ms depending on the process, the slow ones faulting in their
# temporaries afresh on every call; 3 of 3 processes fast with it. 2-core Xeon, 2026-12-03.)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # from <malloc.h>
_malloc_tuned = False


@functools.cache  # release_freed_memory() asks after every rerun of the app
def _glibc():
    """The C library where it is glibc (Linux), else None (macOS, Windows, musl: nothing to tune)."""
    try:
        return ctypes.CDLL(None) if os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc") else None
    except (AttributeError, OSError, ValueError):
        return None


def keep_freed_memory() -> None:
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20)


# ---- the allocator in the app server: the opposite trade --------------------------------------------------------
# Streamlit runs every rerun in a new script thread, and glibc gives threads their own heaps (arenas, up to 8 per
# core): memory freed in one rerun's heap is not reused by the next rerun's, so the server grew by each page's
# working set: 1,367 MB after one visit of every page, 941 MB with one shared heap and freed pages handed back
# after each rerun (malloc_trim, 1-3 ms) (2026-12-03, 2-core Xeon, one visit each).


def share_one_heap() -> None:
    """All threads allocate from one heap (glibc's M_ARENA_MAX = 1); for the app server, once at start."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, 1)


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc's malloc_trim); for the app server, after each rerun."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
