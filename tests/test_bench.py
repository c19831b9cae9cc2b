"""`madx bench --shape tiny` runs on the CPU and prints finite figures (a smoke test: no speed is asserted)."""

import json
import math

import pytest

from madx.cli import main as cli
from madx.profiling import kernel_kind


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
