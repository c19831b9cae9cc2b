"""Run a madx command on the devices a job was given: lease GPUs, set CUDA_VISIBLE_DEVICES, pick accelerate flags.

Snakemake's `--resources gpu=4` caps how many GPUs jobs use at once but does not say which:
without this, every job would run on GPU 0. A job asking for N GPUs takes N free ones by
file lock (released when it exits, even if killed) unless the scheduler already set
CUDA_VISIBLE_DEVICES (Slurm does). When the scheduler gave more GPUs than the job asks for (a Slurm group
job: several jobs in one allocation), the job takes its own share of those, by lock as well.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from ..core.errors import MadxError


class LaunchError(MadxError, RuntimeError):
    """The job cannot get the devices it asks for."""


def accelerate_flags(gpus: int, mixed_precision: str = "no") -> list[str]:
    """`accelerate launch`'s flags for N processes (DDP) on N GPUs, N > 1 (one process runs without it)."""
    if gpus < 2:
        raise ValueError(f"accelerate launch is for several GPUs, not {gpus}")
    return ["--multi_gpu", "--num_processes", str(gpus), "--main_process_port", "0", "--mixed_precision",
            mixed_precision, "--num_machines", "1", "--dynamo_backend", "no"]


def visible_gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
        return sum(1 for line in out.splitlines() if line.startswith("GPU "))
    except (OSError, subprocess.CalledProcessError):
        return 0


def lease_gpus(n: int, lock_dir: Path, total: int, timeout_s: float = 24 * 3600, poll_s: float = 2.0):
    """Hold n GPU locks out of `total`; returns (gpu ids, open lock fds)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    if n > total:
        raise LaunchError(f"this job asks for {n} GPU(s) but this machine has {total}; set the stage's "
                          f"compute.<stage>.gpus in the config to at most {total}, or run it where the GPUs are")
    deadline = time.monotonic() + timeout_s
    while True:
        ids, fds = [], []
        for gpu in range(total):
            fd = os.open(lock_dir / f"gpu{gpu}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            ids.append(gpu)
            fds.append(fd)
            if len(ids) == n:
                return ids, fds
        for fd in fds:
            os.close(fd)
        if time.monotonic() > deadline:
            raise LaunchError(f"no {n} free GPUs in {timeout_s:.0f}s (locks in {lock_dir})")
        time.sleep(poll_s)


def devices_for(gpus: int, env: dict, lock_path: Path) -> tuple[str, list]:
    """(CUDA_VISIBLE_DEVICES for a job asking for `gpus`, the lock fds it holds while it runs)."""
    given = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if gpus == 0:
        return "", []
    if not given:  # nothing set: take free GPUs of the machine
        ids, fds = lease_gpus(gpus, lock_path, visible_gpu_count())
        return ",".join(map(str, ids)), fds
    if len(given) > gpus:
        # the scheduler gave more GPUs than this job asks for: a Slurm group job, whose jobs run side by side on
        # the allocation's GPUs; each takes its own share of them, by lock among the allocation's jobs
        allocation = env.get("SLURM_JOB_ID") or "-".join(given)
        ids, fds = lease_gpus(gpus, lock_path / f"allocation-{allocation}", len(given))
        return ",".join(given[i] for i in ids), fds
    return ",".join(given), []  # the scheduler's own choice for this job


def build_command(command: list[str], gpus: int, use_accelerate: bool, mixed_precision: str) -> list[str]:
    """`accelerate launch` only where it does something: several processes. One process (a CPU, one GPU)
    runs directly: the launcher would cost a second interpreter and torch import per job (3.5 s on 2 cores).
    (The command's own --mixed-precision sets one process's precision; launch()'s env keeps gpus=0 on the CPU.)"""
    if use_accelerate and gpus > 1:
        return [sys.executable, "-m", "accelerate.commands.launch", *accelerate_flags(gpus, mixed_precision),
                "-m", "madx.cli", *command]
    return [sys.executable, "-m", "madx.cli", *command]


def launch(command: list[str], *, gpus: int = 0, threads: int | None = None, use_accelerate: bool = True,
           mixed_precision: str = "no", lock_dir: str | None = None) -> int:
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if gpus == 0:  # the CPU, also where accelerate would pick another device (Apple's MPS)
        env["ACCELERATE_USE_CPU"] = "true"
    env["CUDA_VISIBLE_DEVICES"], fds = devices_for(
        gpus, env, Path(lock_dir or env.get("MADX_GPU_LOCK_DIR") or f"/tmp/madx-gpu-locks-{os.getuid()}"))
    print(f"madx launch: gpus={gpus} CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']!r}", file=sys.stderr, flush=True)
    try:
        return subprocess.call(build_command(command, gpus, use_accelerate, mixed_precision), env=env)
    finally:
        for fd in fds:
            os.close(fd)
