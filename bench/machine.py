"""What the benchmarks record about the machine and the process, and how they write their results."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import statistics
from pathlib import Path

import torch


def minor_faults() -> int:
    """Minor page faults of this process so far: fresh memory pages touched (allocator churn)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def loadavg() -> list[float] | None:
    """1/5/15-minute load averages: on a shared machine, how busy it was around the run."""
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def machine_info(threads: int) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    from aecore import fastpath, runtime

    return {
        "cpu": cpu, "cpu_flags": cpu_flags(), "logical_cpus": os.cpu_count(), "torch_threads": threads,
        "runtime": runtime.describe(), "fast_paths": fastpath.plan().to_dict(),
        # set to emulate an older CPU on this one (e.g. ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2)
        "isa_limits": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                                  "MKL_ENABLE_INSTRUCTIONS") if k in os.environ},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
        "torchvision": __import__("torchvision").__version__, "python": platform.python_version(),
        "platform": platform.platform(), "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def cpu_flags() -> str:
    """The CPU's vector-instruction flags (avx*, fma, amx*) from /proc/cpuinfo: what decides which kernels run."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
        return " ".join(sorted(f for f in flags.split(":", 1)[1].split() if f.startswith(("avx", "fma", "amx"))))
    except (OSError, StopIteration):
        return "unknown"


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def finish_report(folder, stem: str, report: dict, markdown) -> None:
    """Record the closing load average, write <stem>.json and <stem>.md (each replaced atomically, so a crash
    never leaves half a file) and print the markdown. `markdown(report)` renders the tables."""
    report["machine"]["loadavg_end"] = loadavg()
    text = markdown(report)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in ((f"{stem}.json", json.dumps(report, indent=2) + "\n"), (f"{stem}.md", text)):
        tmp = out / (name + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, out / name)
    print()
    print(text)
