"""Devices and precision for training: the accelerator, the frozen base in half precision, torch.compile,
the optimizer."""

from __future__ import annotations

import functools
import logging

import torch
from torch import nn

from ..core.settings import CUDA_GRAPH_MODES, TrainingError, TrainSettings
from ..core.tensors import HALF_DTYPES

log = logging.getLogger(__name__)
# Before this release, Hugging Face's mask code builds a full (B, 1, T, T) attention mask whenever dynamo
# traces it, even for no mask at all, which keeps SDPA off its flash kernel in every compiled model.
COMPILE_MASK_FIX = (5, 24)


def check_mixed_precision(mixed_precision: str) -> None:
    """Refuse, before any work, a precision this machine cannot run."""
    if mixed_precision == "bf16" and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        raise TrainingError(
            "mixed_precision=bf16 needs a CUDA GPU with bf16 support (Ampere or newer), and this machine has "
            f"{'a GPU without it' if torch.cuda.is_available() else 'no GPU'}; set mixed_precision: no (or fp16 on older GPUs)"
        )
    if mixed_precision == "fp16" and not torch.cuda.is_available():
        raise TrainingError("mixed_precision=fp16 needs a CUDA GPU; set mixed_precision: no on a CPU")


def make_accelerator(settings: TrainSettings):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    check_mixed_precision(settings.mixed_precision)
    accelerator = Accelerator(
        mixed_precision=settings.mixed_precision,
        # our loss is already normalised for accumulation and processes
        gradient_accumulation_steps=1,
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
    )
    if settings.compile in CUDA_GRAPH_MODES and accelerator.num_processes > 1:
        raise TrainingError(f"compile={settings.compile!r} (CUDA graphs) runs on one process, not "
                            f"{accelerator.num_processes}; use compile: default or max-autotune-no-cudagraphs")
    return accelerator


def cast_frozen(model: nn.Module, mixed_precision: str) -> None:
    """Keep the frozen base in bf16/fp16 under mixed precision: it never updates, so it needs no fp32 copy
    and autocast no per-step cast. Trainable weights (adapters, heads) stay fp32 for the optimizer."""
    dtype = HALF_DTYPES.get(mixed_precision)
    if dtype is None:
        return
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad and param.is_floating_point():
                param.data = param.data.to(dtype)


@functools.cache
def _warn_if_mask_unfixed(version: str) -> None:
    """Once per transformers version, however many modules are compiled."""
    if tuple(int(part) for part in version.split(".")[:2] if part.isdigit()) < COMPILE_MASK_FIX:
        log.warning("transformers %s builds a full attention mask under torch.compile, so attention runs without "
                    "flash; install transformers>=%d.%d (madx's requirement) for the fast compiled path",
                    version, *COMPILE_MASK_FIX)


def compiled(module: nn.Module, mode: str) -> nn.Module:
    """torch.compile with one of COMPILE_MODES."""
    import transformers

    _warn_if_mask_unfixed(transformers.__version__)
    return torch.compile(module, mode=None if mode == "default" else mode)


def make_optimizer(params: list, settings: TrainSettings, device: torch.device):
    # fused AdamW: one kernel over the few trainable tensors instead of one per tensor
    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay,
                             fused=device.type == "cuda")
