"""Where a step's time goes: torch.profiler over a few steps, summed by kind of kernel.

`madx bench --profile DIR` writes, per measured path, the profiler's table of its costliest ops
(DIR/<path>.txt) and a summary in the bench JSON: the step's wall time, the share of it the GPU
spent running kernels (well under 1: the host cannot launch work fast enough), and device time
by kind (GEMM, attention, norms, softmax/loss, elementwise, copies, optimizer, compiled fusions).
On the CPU only the op table and wall time are written.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ..core.files import write_text

log = logging.getLogger(__name__)

# first match wins: attention before GEMM (memory-efficient attention kernels are CUTLASS ones)
KERNEL_KINDS = (
    ("attention", ("flash", "fmha", "attention", "mem_eff")),
    ("gemm", ("gemm", "cutlass", "xmma", "nvjet", "cublas", "triton_tem", "splitk")),
    ("norm", ("layer_norm", "layernorm")),
    ("softmax/loss", ("softmax", "nll_loss", "cross_entropy")),
    ("optimizer", ("adam", "multi_tensor")),
    ("copy", ("copy", "cat", "gather", "index", "scatter", "fill")),
    ("fused (compiled)", ("triton",)),
    ("reduction", ("reduce",)),
    ("elementwise", ("elementwise",)),
)


def kernel_kind(name: str) -> str:
    low = name.lower()
    for kind, needles in KERNEL_KINDS:
        if any(n in low for n in needles):
            return kind
    return "other"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings end here)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def profile_steps(step, first: int, steps: int, device: torch.device, path: Path) -> dict:
    """Run step(first) ... step(first + steps - 1) under the profiler; write its op table to `path`.

    A profiler failure is reported in the summary, never raised: the figures measured before it stand."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    try:
        sync(device)
        with profile(activities=activities) as prof:
            start = time.perf_counter()
            for i in range(first, first + steps):
                step(i)
            sync(device)
            wall = time.perf_counter() - start
        averages = prof.key_averages()
        write_text(path, averages.table(sort_by="self_device_time_total" if cuda else "self_cpu_time_total",
                                        row_limit=40) + "\n")
    except Exception as error:  # noqa: BLE001 - a diagnostic must not cost the measurement
        log.warning("profiling for %s failed: %s", path.name, error)
        return {"error": f"{type(error).__name__}: {error}"}
    return {**summarize(averages if cuda else [], steps, wall), "table": str(path)}


def summarize(events, steps: int, wall: float) -> dict:
    """Per-step wall time; from the profiler's CUDA kernel events (if any): kernels, busy time, time by kind."""
    from torch.autograd import DeviceType

    summary = {"step_ms": 1e3 * wall / steps}
    kinds: dict[str, float] = {}
    launches = 0
    for event in events:
        if event.device_type == DeviceType.CUDA:
            kind = kernel_kind(event.key)
            kinds[kind] = kinds.get(kind, 0.0) + event.self_device_time_total / 1e3 / steps  # us -> ms per step
            launches += event.count
    if launches:
        busy = sum(kinds.values())
        summary.update(kernels_per_step=launches / steps, gpu_busy_ms=busy, gpu_busy_share=busy / summary["step_ms"],
                       kernel_ms={k: v for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])})
    return summary


def describe(name: str, summary: dict) -> str:
    if "error" in summary:
        return f"  profile {name}: failed ({summary['error']})"
    line = f"  profile {name}: {summary['step_ms']:.2f} ms/step"
    if "gpu_busy_share" in summary:
        line += f", {summary['kernels_per_step']:.0f} kernels, GPU busy {100 * summary['gpu_busy_share']:.0f}%: " + ", ".join(
            f"{kind} {ms:.2f}" for kind, ms in summary["kernel_ms"].items()) + " (ms/step)"
    return line + f"  [{summary['table']}]"
