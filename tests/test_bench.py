"""`madx bench --shape tiny` runs on the CPU and prints finite figures (a smoke test: no speed is asserted)."""

import json
import math

import pytest

from madx.cli import main as cli
from madx.profiling import describe, kernel_kind, summarize


def test_tiny_bench_runs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli(["bench", "--shape", "tiny", "--batch", "8", "--seq", "32", "--steps", "2", "--warmup", "1",
                "--output", str(out), "--profile", str(tmp_path / "profile")]) == 0
    printed = capsys.readouterr().out
    assert "language-adapter training" in printed and "Stack(lang, task) inference" in printed
    result = json.loads(out.read_text())
    figures = [result["lang_train"]["tok_s"], result["lang_train"]["tflops"], result["task_train"]["tok_s"],
               *[v for k, v in result["inference"].items() if k != "profile"]]
    assert all(math.isfinite(v) and v > 0 for v in figures)
    assert result["lang_train"]["trainable"] > 0
    # --profile: a table of the costliest ops per path, after the timing
    tables = {p.name: p.read_text() for p in (tmp_path / "profile").iterdir()}
    assert set(tables) == {"lang_train.txt", "task_train.txt", "bare_inference.txt", "stack_inference.txt",
                           "eval_inference.txt"}
    assert "aten::addmm" in tables["lang_train.txt"] and "aten::addmm" in tables["stack_inference.txt"]
    assert result["lang_train"]["profile"]["step_ms"] > 0 and "profile lang_train" in printed


@pytest.mark.parametrize("name, kind", [
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off", "gemm"),
    ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTT", "gemm"),
    ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, cutlass::bfloat16_t>>",
     "attention"),
    ("fmha_cutlassB_bf16_aligned_64x64_k64_sm80", "attention"),
    ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16, float>", "norm"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl, std::array<char*, 2>>",
     "elementwise"),
    ("void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)>",
     "copy"),
    ("void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, LogSoftMaxForwardEpilogue>",
     "softmax/loss"),
    ("void at::native::multi_tensor_apply_kernel<at::native::FusedAdamMathFunctor<float, 4>>", "optimizer"),
    ("triton_poi_fused_add_gelu_3", "fused (compiled)"),
    ("triton_red_fused_add_native_layer_norm_7", "norm"),
])
def test_kernel_kinds(name, kind):
    assert kernel_kind(name) == kind


def test_kernel_summary():
    """The GPU side of --profile, on recorded events: per-step kernel counts and milliseconds by kind."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    def event(key, device_type, us, count):
        return SimpleNamespace(key=key, device_type=device_type, self_device_time_total=us, count=count)

    events = [event("aten::addmm", DeviceType.CPU, 9000.0, 6),  # host ops: not kernels
              event("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTT", DeviceType.CUDA, 6000.0, 6),
              event("void pytorch_flash::flash_fwd_kernel<...>", DeviceType.CUDA, 1500.0, 3),
              event("void at::native::vectorized_layer_norm_kernel<c10::BFloat16, float>", DeviceType.CUDA, 600.0, 3)]
    summary = summarize(events, steps=3, wall=0.012)  # 4 ms per step
    assert summary["step_ms"] == pytest.approx(4.0)
    assert summary["kernels_per_step"] == 4
    assert summary["kernel_ms"] == pytest.approx({"gemm": 2.0, "attention": 0.5, "norm": 0.2})
    assert list(summary["kernel_ms"]) == ["gemm", "attention", "norm"]  # costliest first
    assert summary["gpu_busy_ms"] == pytest.approx(2.7) and summary["gpu_busy_share"] == pytest.approx(0.675)
    assert "4 kernels, GPU busy 68%: gemm 2.00" in describe("lang_train", {**summary, "table": "t.txt"})
    assert summarize([], steps=2, wall=0.01) == {"step_ms": pytest.approx(5.0)}  # CPU: wall time only


def test_a_failed_profile_keeps_the_figures(tmp_path):
    import torch

    from madx.profiling import profile_steps

    def step(i):
        raise RuntimeError("CUPTI unavailable")

    summary = profile_steps(step, 0, 2, torch.device("cpu"), tmp_path / "x.txt")
    assert summary == {"error": "RuntimeError: CUPTI unavailable"}
    assert describe("lang_train", summary) == "  profile lang_train: failed (RuntimeError: CUPTI unavailable)"
