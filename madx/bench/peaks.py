"""Dense peak FLOP/s of common accelerators, for the model FLOP utilisation (MFU) `madx bench` reports.

Keyed by the name torch reports (`torch.cuda.get_device_name()`); a device not in the table gets no MFU, rather
than one against some other device's peak. The figures are the vendors' published peaks without structured
sparsity: where a datasheet gives a tensor figure "with sparsity" (marked *), the dense one is half of it.
bf16 and fp16 are tensor-core figures with fp32 accumulation, what PyTorch's GEMMs use (GeForce cards run fp16
accumulation twice as fast; PyTorch does not use it); tf32 is the tensor-core fp32 path, fp32 the plain
(CUDA-core, or AMD's matrix) fp32 rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Peak:
    """Dense TFLOP/s by precision; None where the device has no such path (a V100 has no bf16 or tf32)."""

    bf16: float | None
    fp16: float | None
    tf32: float | None
    fp32: float


# NVIDIA H100 and H200 datasheets (nvidia.com/en-us/data-center/h100/, .../h200/): SXM TF32 989*, BF16/FP16
# 1,979*, FP32 67; H100 PCIe TF32 756*, BF16/FP16 1,513*, FP32 51; NVL TF32 835*, BF16/FP16 1,671*, FP32 60.
_HOPPER_SXM = Peak(bf16=989.5, fp16=989.5, tf32=494.5, fp32=67.0)
_HOPPER_NVL = Peak(bf16=835.5, fp16=835.5, tf32=417.5, fp32=60.0)
# NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100/): the same peaks for 40/80 GB, SXM4 and PCIe:
# TF32 156 (312*), BF16/FP16 312 (624*), FP32 19.5.
_A100 = Peak(bf16=312.0, fp16=312.0, tf32=156.0, fp32=19.5)
# NVIDIA V100 datasheet: tensor (fp16) 125 SXM2 / 112 PCIe / 130 V100S, FP32 15.7 / 14 / 16.4; no bf16 or tf32.
_V100_SXM2 = Peak(bf16=None, fp16=125.0, tf32=None, fp32=15.7)
_V100_PCIE = Peak(bf16=None, fp16=112.0, tf32=None, fp32=14.0)

PEAKS = {
    "NVIDIA H100 80GB HBM3": _HOPPER_SXM,  # H100 SXM5
    "NVIDIA H100 PCIe": Peak(bf16=756.5, fp16=756.5, tf32=378.0, fp32=51.0),
    "NVIDIA H100 NVL": _HOPPER_NVL,
    "NVIDIA H200": _HOPPER_SXM,  # H200 SXM: H100's compute, more and faster memory
    "NVIDIA H200 NVL": _HOPPER_NVL,
    "NVIDIA A100-SXM4-40GB": _A100,
    "NVIDIA A100-SXM4-80GB": _A100,
    "NVIDIA A100-PCIE-40GB": _A100,
    "NVIDIA A100 80GB PCIe": _A100,
    # NVIDIA A10 datasheet: TF32 62.5 (125*), BF16/FP16 125 (250*), FP32 31.2. (AWS's A10G has no NVIDIA
    # datasheet of its own, so it is not here: its MFU is shown as unknown.)
    "NVIDIA A10": Peak(bf16=125.0, fp16=125.0, tf32=62.5, fp32=31.2),
    # NVIDIA A40 datasheet: TF32 74.8 (149.6*), BF16/FP16 149.7 (299.4*), FP32 37.4
    "NVIDIA A40": Peak(bf16=149.7, fp16=149.7, tf32=74.8, fp32=37.4),
    # NVIDIA L4 datasheet: TF32 120*, BF16/FP16 242*, FP32 30.3
    "NVIDIA L4": Peak(bf16=121.0, fp16=121.0, tf32=60.0, fp32=30.3),
    # NVIDIA L40 datasheet: TF32 90.5 (181*), BF16/FP16 181.05 (362.1*), FP32 90.5
    "NVIDIA L40": Peak(bf16=181.05, fp16=181.05, tf32=90.5, fp32=90.5),
    # NVIDIA L40S datasheet: TF32 183 (366*), BF16/FP16 362.05 (733*), FP32 91.6
    "NVIDIA L40S": Peak(bf16=362.05, fp16=362.05, tf32=183.0, fp32=91.6),
    "Tesla V100-SXM2-16GB": _V100_SXM2,
    "Tesla V100-SXM2-32GB": _V100_SXM2,
    "Tesla V100-PCIE-16GB": _V100_PCIE,
    "Tesla V100-PCIE-32GB": _V100_PCIE,
    "Tesla V100S-PCIE-32GB": Peak(bf16=None, fp16=130.0, tf32=None, fp32=16.4),
    # NVIDIA T4 datasheet: mixed-precision (fp16/fp32) tensor 65, FP32 8.1
    "Tesla T4": Peak(bf16=None, fp16=65.0, tf32=None, fp32=8.1),
    # NVIDIA Ada GPU architecture whitepaper, RTX 4090: BF16/FP16 with FP32 accumulate 165.2 (330.4*), TF32 82.6
    # (165.2*), FP32 82.6
    "NVIDIA GeForce RTX 4090": Peak(bf16=165.2, fp16=165.2, tf32=82.6, fp32=82.6),
    # NVIDIA Ampere GA102 GPU architecture whitepaper: RTX 3090 BF16/FP16 with FP32 accumulate 71 (142*), TF32
    # 35.6 (71*), FP32 35.6; RTX A6000 BF16/FP16 154.8 (309.7*), TF32 77.4 (154.8*), FP32 38.7
    "NVIDIA GeForce RTX 3090": Peak(bf16=71.0, fp16=71.0, tf32=35.6, fp32=35.6),
    "NVIDIA RTX A6000": Peak(bf16=154.8, fp16=154.8, tf32=77.4, fp32=38.7),
    # AMD Instinct MI300X data sheet (amd.com): BF16/FP16 1,307.4 (2,614.9*), TF32 653.7 (1,307.4*), FP32 matrix 163.4
    "AMD Instinct MI300X": Peak(bf16=1307.4, fp16=1307.4, tf32=653.7, fp32=163.4),
}


def matmul_precision(mixed_precision: str) -> str:
    """The precision a run's GEMMs use: the autocast dtype, else fp32, or tf32 where torch is allowed it
    (`torch.set_float32_matmul_precision("high")`; madx leaves torch's default, "highest": plain fp32)."""
    if mixed_precision in ("bf16", "fp16"):
        return mixed_precision
    return "fp32" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def peak_flops(device: str, precision: str) -> float | None:
    """FLOP/s at the dense peak of `device` (a name torch reports) in `precision`; None where it is unknown."""
    peak = PEAKS.get(device)
    tflops = getattr(peak, precision) if peak is not None else None
    return tflops * 1e12 if tflops is not None else None


def unknown_peak(device: str, precision: str) -> str:
    """Why a run has no MFU, as the table shows it."""
    if device not in PEAKS:
        return f"– (peak of {device} unknown)"
    return f"– ({device} has no dense {precision} peak)"
