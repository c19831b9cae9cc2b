"""`madx bench --shape tiny` runs on the CPU and prints finite figures (a smoke test: no speed is asserted)."""

import json
import math

import pytest

from madx.bench.profiling import describe, kernel_kind, summarize
from madx.cli import main as cli


def anchor_json(path, **overrides):
    """An anchor_adapterhub.py output (its keys; the figures made up)."""
    anchor = {"device": "cpu", "batch": 8, "seq": 32, "adapterhub_lang_dense_tok_s": 1000.0,
              "adapterhub_lang_sparse_tok_s": 2000.0, "bare_infer_tok_s": 10_000.0, "stack_infer_tok_s": 6000.0,
              "adapterhub_lang_sparse_tflops": 0.01, **overrides}
    path.write_text(json.dumps(anchor))
    return path


def test_tiny_bench_runs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli(["bench", "--shape", "tiny", "--batch", "8", "--seq", "32", "--steps", "2", "--warmup", "1",
                "--output", str(out), "--profile", str(tmp_path / "profile"),
                "--anchor", str(anchor_json(tmp_path / "anchor.json"))]) == 0
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
    # --anchor: side by side, the ratios in the JSON
    assert result["vs_anchor"]["lang_over_adapterhub_dense"] == pytest.approx(result["lang_train"]["tok_s"] / 1000)
    assert result["vs_anchor"]["adapterhub_stack_over_bare"] == pytest.approx(0.6)
    assert "| LA training vs dense head, tok/s | 1,000 |" in printed


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

    from madx.bench.profiling import profile_steps

    def step(i):
        raise RuntimeError("CUPTI unavailable")

    summary = profile_steps(step, 0, 2, torch.device("cpu"), tmp_path / "x.txt")
    assert summary == {"error": "RuntimeError: CUPTI unavailable"}
    assert describe("lang_train", summary) == "  profile lang_train: failed (RuntimeError: CUPTI unavailable)"


def test_comparison_with_the_anchor():
    """Ratios and targets on known figures: 3.5x dense (met), 1.2x masked-only (not), 40% MFU, memory 0.25x."""
    from madx.bench.measure import comparison_table, versus_anchor

    anchor = {"device": "H100", "batch": 64, "seq": 256, "adapterhub_lang_dense_tok_s": 100_000.0,
              "adapterhub_lang_sparse_tok_s": 291_666.0, "bare_infer_tok_s": 1.5e6, "stack_infer_tok_s": 0.9e6,
              "adapterhub_peak_mem_gb": 48.0, "adapterhub_lang_sparse_tflops": 113.0}
    result = {"device": "H100", "shape": "xlmr-base", "lang_train": {"tok_s": 350_000.0, "mfu": 0.40, "peak_mem_gb": 12.0},
              "inference": {"bare_infer_tok_s": 2e6, "stack_infer_tok_s": 1.7e6, "stack_over_bare": 0.85}}
    ratios = versus_anchor(result, anchor)
    assert ratios["lang_over_adapterhub_dense"] == pytest.approx(3.5)
    assert ratios["lang_over_adapterhub_masked"] == pytest.approx(1.2, abs=1e-4)
    assert ratios["memory_over_adapterhub"] == pytest.approx(0.25)
    assert ratios["adapterhub_stack_over_bare"] == pytest.approx(0.6)
    assert ratios["targets_met"] == {"lang_over_adapterhub_dense": True, "lang_over_adapterhub_masked": False,
                                     "mfu": True, "memory_over_adapterhub": True, "stack_over_bare": False}
    table = comparison_table(result, anchor, ratios)
    assert "| LA training vs dense head, tok/s | 100,000 | 350,000 | 3.50x | ≥3x | yes |" in table
    assert "| LA training vs masked-only head, tok/s | 291,666 | 350,000 | 1.20x | ≥1.3x | **no** |" in table
    assert "| LA training MFU | 11.4% (masked-only) | 40.0% |  | ≥35% | yes |" in table
    assert "| LA training peak memory | 48.0 GB | 12.0 GB | 0.25x | ≤0.5x | yes |" in table
    assert "| Stack(lang, task) inference, tok/s | 900,000 (0.60x bare) | 1,700,000 (0.85x bare) |  | ≥0.9x bare | **no** |" in table
    assert "reference only" not in table  # the targets' own shape and device
    assert "reference only" in comparison_table({**result, "shape": "tiny"}, anchor, ratios)


@pytest.mark.parametrize("overrides, message", [
    ({"seq": 64}, r"measured batch 8 x seq 64, this run batch 8 x seq 32"),
    ({"device": "NVIDIA H100 80GB HBM3"}, r"ran on 'NVIDIA H100 80GB HBM3', this machine is 'cpu'"),
    ({"adapterhub_lang_dense_tok_s": None}, r"no adapterhub_lang_dense_tok_s"),
    (None, r"not a readable JSON file"),
])
def test_a_bad_anchor_is_refused_before_measuring(tmp_path, capsys, overrides, message):
    import re

    path = tmp_path / "anchor.json"
    if overrides is None:
        path.write_text("{not json")
    else:
        anchor_json(path, **overrides)
        if None in overrides.values():
            data = json.loads(path.read_text())
            path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    out = tmp_path / "bench.json"
    assert cli(["bench", "--shape", "tiny", "--batch", "8", "--seq", "32", "--anchor", str(path),
                "--output", str(out)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()  # refused before any measurement


@pytest.mark.parametrize("args, message", [
    (["--shape", "xlmr-base", "--seq", "1024"], r"--seq 1024 is beyond the xlmr-base shape's position limit of 512"),
    (["--shape", "mbert-base", "--seq", "513"], r"--seq 513 is beyond the mbert-base shape's position limit of 512"),
    (["--steps", "0"], r"--steps 0: must be at least 1"),
    (["--batch", "0"], r"--batch 0: must be at least 1"),
])
def test_a_request_that_cannot_run_is_refused_before_building(tmp_path, capsys, args, message):
    import re

    out, log = tmp_path / "bench.json", tmp_path / "bench.log"
    assert cli(["bench", *args, "--output", str(out), "--log-file", str(log)]) == 2
    err = capsys.readouterr().err
    assert len(re.findall(message, err)) == 1, err  # one line on the console
    assert re.search(message, log.read_text())  # and in the log file
    assert not out.exists()


def test_the_tiny_shape_takes_the_gpu_shapes_sequence_length(capsys):
    """`madx bench` with no arguments (tiny shape, seq 256) runs; its position table once stopped at 128."""
    assert cli(["bench", "--batch", "2", "--steps", "1", "--warmup", "0"]) == 0
    assert "batch 2 x seq 256" in capsys.readouterr().out
