"""madx launch: run a madx command on a job's devices (what the workflow's rules call).

    madx launch --gpus N [--threads T] [--no-accelerate] -- train-lang --lang sw ...

--gpus 0 runs one CPU process, 1 one GPU (both directly), N>1 N processes (accelerate launch, DDP).
Free GPUs are leased by file lock and set in CUDA_VISIBLE_DEVICES, unless the scheduler set it already.
"""

from __future__ import annotations

import argparse
import sys

from .common import user_error


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(prog="madx launch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads per process (OMP_NUM_THREADS)")
    p.add_argument("--mixed-precision", default="no", choices=("no", "bf16", "fp16"))
    p.add_argument("--no-accelerate", action="store_true",
                   help="run the command directly even on several GPUs (evaluation: one process)")
    p.add_argument("--lock-dir", help="where GPU leases live (default /tmp/madx-gpu-locks-UID)")
    args = p.parse_args(argv[:split])
    command = argv[split + 1:]
    if not command:
        p.error("give the madx command after --")
    from ..experiment.launch import LaunchError, launch

    try:
        return launch(command, gpus=args.gpus, threads=args.threads, use_accelerate=not args.no_accelerate,
                      mixed_precision=args.mixed_precision, lock_dir=args.lock_dir)
    except LaunchError as err:
        return user_error(err)
