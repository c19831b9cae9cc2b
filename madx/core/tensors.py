"""Tensor facts shared by training, the task families and evaluation: the half-precision dtypes, the label that
no loss counts, and when a batch's attention mask can be dropped."""

from __future__ import annotations

import torch

HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
IGNORE = -100  # a label position no loss counts (cross_entropy's ignore_index): sub-tokens, unmasked MLM tokens


def without_full_mask(batch: dict) -> dict:
    """The batch without its attention mask when that masks nothing (checked on the host copy: no device sync).

    Hugging Face models skip an all-ones mask themselves in eager mode, but only by reading it on the
    device, and under torch.compile they build the full (B, 1, T, T) mask from it, which keeps SDPA off
    its flash kernel. No mask means the same attention."""
    mask = batch.get("attention_mask")
    if mask is None or not bool(mask.all()):
        return batch
    return {k: v for k, v in batch.items() if k != "attention_mask"}
