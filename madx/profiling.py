"""Where a step's time goes: torch.profiler over a few steps, summed by kind of kernel.

`madx bench --profile DIR` writes, per measured path, the profiler's table of its costliest ops
(DIR/<path>.txt) and a summary in the bench JSON: the step's wall time, the share of it the GPU
spent running kernels (well under 1: the host cannot launch work fast enough), and device time
by kind (GEMM, attention, norms, softmax/loss, elementwise, copies, optimizer, compiled fusions).
On the CPU only the op table and wall time are written.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def profile_steps(step, first: int, steps: int, device: torch.device, path: Path) -> dict:
    """Run step(first) ... step(first + steps - 1) under the profiler; write its op table to `path`."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    _sync(device)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for i in range(first, first + steps):
            step(i)
        _sync(device)
        wall = time.perf_counter() - start
    averages = prof.key_averages()
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(averages.table(sort_by=sort, row_limit=40) + "\n")
    summary = {"step_ms": 1e3 * wall / steps, "table": str(path)}
    if cuda:
        kinds: dict[str, float] = {}
        launches = 0
        for event in averages:
            if event.device_type == DeviceType.CUDA:
                kind = kernel_kind(event.key)
                kinds[kind] = kinds.get(kind, 0.0) + event.self_device_time_total / 1e3 / steps  # us -> ms per step
                launches += event.count
        busy = sum(kinds.values())
        summary.update(kernels_per_step=launches / steps, gpu_busy_ms=busy, gpu_busy_share=busy / summary["step_ms"],
                       kernel_ms={k: v for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])})
    return summary


def describe(name: str, summary: dict) -> str:
    line = f"  profile {name}: {summary['step_ms']:.2f} ms/step"
    if "gpu_busy_share" in summary:
        line += f", {summary['kernels_per_step']:.0f} kernels, GPU busy {100 * summary['gpu_busy_share']:.0f}%: " + ", ".join(
            f"{kind} {ms:.2f}" for kind, ms in summary["kernel_ms"].items()) + " (ms/step)"
    return line + f"  [{summary['table']}]"
