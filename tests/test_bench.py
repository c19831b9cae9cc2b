"""`madx bench --shape tiny` runs on the CPU and prints finite figures (a smoke test: no speed is asserted); MFU is
against the dense peak of the device found, and only where that peak is known."""

import json
import math
import re

import pytest

from madx.bench.profiling import describe, kernel_kind, summarize
from madx.cli import main as cli


def peer_json(path, **overrides):
    """AdapterHub's figures, as `--peer` takes them (the keys; the figures made up)."""
    peer = {"device": "cpu", "batch": 8, "seq": 32, "adapterhub_lang_dense_tok_s": 1000.0,
              "adapterhub_lang_sparse_tok_s": 2000.0, "bare_infer_tok_s": 10_000.0, "stack_infer_tok_s": 6000.0,
              "adapterhub_lang_sparse_tflops": 0.01, **overrides}
    path.write_text(json.dumps(peer))
    return path


def test_tiny_bench_runs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli(["bench", "--shape", "tiny", "--batch", "8", "--seq", "32", "--steps", "2", "--warmup", "1",
                "--output", str(out), "--profile", str(tmp_path / "profile"),
                "--peer", str(peer_json(tmp_path / "peer.json"))]) == 0
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
    # the CPU has no peak in the table: no MFU, and the table says why
    assert result["lang_train"]["mfu"] is None and result["peak_tflops"] is None
    assert re.search(r"\n    MFU +– \(peak of cpu unknown\)\n", printed), printed
    # --peer: side by side, the ratios in the JSON
    assert result["vs_peer"]["lang_over_adapterhub_dense"] == pytest.approx(result["lang_train"]["tok_s"] / 1000)
    assert result["vs_peer"]["adapterhub_stack_over_bare"] == pytest.approx(0.6)
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


def test_comparison_with_the_peer():
    """Ratios and targets on known figures: 3.5x dense (met), 1.2x masked-only (not), 40% MFU, memory 0.25x."""
    from madx.bench.peer import comparison_table, versus_peer

    peer = {"device": "H100", "batch": 64, "seq": 256, "adapterhub_lang_dense_tok_s": 100_000.0,
              "adapterhub_lang_sparse_tok_s": 291_666.0, "bare_infer_tok_s": 1.5e6, "stack_infer_tok_s": 0.9e6,
              "adapterhub_peak_mem_gb": 48.0, "adapterhub_lang_sparse_tflops": 113.0}
    result = {"device": "H100", "shape": "xlmr-base", "peak_tflops": 989.5,
              "lang_train": {"tok_s": 350_000.0, "mfu": 0.40, "peak_mem_gb": 12.0},
              "inference": {"bare_infer_tok_s": 2e6, "stack_infer_tok_s": 1.7e6, "stack_over_bare": 0.85}}
    ratios = versus_peer(result, peer)
    assert ratios["lang_over_adapterhub_dense"] == pytest.approx(3.5)
    assert ratios["lang_over_adapterhub_masked"] == pytest.approx(1.2, abs=1e-4)
    assert ratios["memory_over_adapterhub"] == pytest.approx(0.25)
    assert ratios["adapterhub_stack_over_bare"] == pytest.approx(0.6)
    assert ratios["targets_met"] == {"lang_over_adapterhub_dense": True, "lang_over_adapterhub_masked": False,
                                     "mfu": True, "memory_over_adapterhub": True, "stack_over_bare": False}
    table = comparison_table(result, peer, ratios)
    assert "| LA training vs dense head, tok/s | 100,000 | 350,000 | 3.50x | ≥3x | yes |" in table
    assert "| LA training vs masked-only head, tok/s | 291,666 | 350,000 | 1.20x | ≥1.3x | **no** |" in table
    assert "| LA training MFU | 11.4% (masked-only) | 40.0% |  | ≥35% | yes |" in table
    assert "| LA training peak memory | 48.0 GB | 12.0 GB | 0.25x | ≤0.5x | yes |" in table
    assert "| Stack(lang, task) inference, tok/s | 900,000 (0.60x bare) | 1,700,000 (0.85x bare) |  | ≥0.9x bare | **no** |" in table
    assert "reference only" not in table  # the targets' own shape and device
    assert "reference only" in comparison_table({**result, "shape": "tiny"}, peer, ratios)


@pytest.mark.parametrize("overrides, message", [
    ({"seq": 64}, r"measured batch 8 x seq 64, this run batch 8 x seq 32"),
    ({"device": "NVIDIA H100 80GB HBM3"}, r"ran on 'NVIDIA H100 80GB HBM3', this device is 'cpu'"),
    ({"adapterhub_lang_dense_tok_s": None}, r"no adapterhub_lang_dense_tok_s"),
    (None, r"not a readable JSON file"),
])
def test_bad_peer_figures_are_refused_before_measuring(tmp_path, capsys, overrides, message):
    path = tmp_path / "peer.json"
    if overrides is None:
        path.write_text("{not json")
    else:
        peer_json(path, **overrides)
        if None in overrides.values():
            data = json.loads(path.read_text())
            path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    out = tmp_path / "bench.json"
    assert cli(["bench", "--shape", "tiny", "--batch", "8", "--seq", "32", "--peer", str(path),
                "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err
    assert not out.exists()  # refused before any measurement


@pytest.mark.parametrize("args, message", [
    (["--shape", "xlmr-base", "--seq", "1024"], r"--seq 1024 is beyond the xlmr-base shape's position limit of 512"),
    (["--shape", "mbert-base", "--seq", "513"], r"--seq 513 is beyond the mbert-base shape's position limit of 512"),
    (["--steps", "0"], r"--steps 0: must be at least 1"),
    (["--batch", "0"], r"--batch 0: must be at least 1"),
])
def test_a_request_that_cannot_run_is_refused_before_building(tmp_path, capsys, args, message):
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


@pytest.mark.parametrize("device, precision, tflops", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.5),  # H100 SXM5: 1,979 with sparsity, halved
    ("NVIDIA H200", "bf16", 989.5),  # H100's compute
    ("NVIDIA H100 PCIe", "bf16", 756.5),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
    ("NVIDIA A100-SXM4-80GB", "tf32", 156.0),
    ("NVIDIA A100-SXM4-80GB", "fp32", 19.5),  # no tensor cores: 16x below bf16
    ("NVIDIA A100 80GB PCIe", "fp16", 312.0),
    ("NVIDIA L4", "bf16", 121.0),
    ("NVIDIA GeForce RTX 4090", "bf16", 165.2),  # fp32 accumulation, as PyTorch's GEMMs use it
    ("Tesla V100-SXM2-32GB", "fp16", 125.0),
    ("Tesla V100-SXM2-32GB", "bf16", None),  # Volta has no bf16 tensor cores
    ("NVIDIA A10G", "bf16", None),  # no datasheet of its own
    ("cpu", "fp32", None),
])
def test_the_peak_of_the_device_found(device, precision, tflops):
    from madx.bench.peaks import peak_flops

    assert peak_flops(device, precision) == (pytest.approx(tflops * 1e12) if tflops else None)


def test_fp32_runs_use_the_fp32_peak_unless_torch_may_use_tf32(monkeypatch):
    import torch

    from madx.bench.peaks import matmul_precision

    assert (matmul_precision("bf16"), matmul_precision("fp16")) == ("bf16", "fp16")
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "highest")  # torch's default
    assert matmul_precision("no") == "fp32"
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
    assert matmul_precision("no") == "tf32"


def measured(device, mixed_precision, tflops=100.0):
    """A run's figures, made up, on `device`."""
    lang = {"tok_s": 300_000.0, "tflops": tflops, "trainable": 10, "peak_mem_gb": 12.0}
    return {"shape": "xlmr-base", "batch": 64, "seq": 256, "mixed_precision": mixed_precision, "device": device,
            "torch": "2.x", "compile": "", "lang_train": lang, "task_train": {"tok_s": 400_000.0},
            "inference": {"eval_infer_tok_s": 1e6, "bare_infer_tok_s": 2e6, "stack_infer_tok_s": 1.5e6,
                          "stack_over_bare": 0.75}}


@pytest.mark.parametrize("precision, peak, mfu", [("bf16", 312.0, "32.1%"), ("fp32", 19.5, "512.8%")])
def test_mfu_is_against_the_peak_of_the_precision_used(precision, peak, mfu):
    """The same 100 TFLOP/s on an A100: 32% of the bf16 peak; against the fp32 peak it could not be reached,
    so a table that mixed the two would show it."""
    from madx.bench.measure import table, with_mfu

    result = with_mfu(measured("NVIDIA A100-SXM4-80GB", precision if precision == "bf16" else "no"), precision)
    assert result["peak_tflops"] == peak and result["lang_train"]["mfu"] == pytest.approx(100.0 / peak)
    printed = table(result)
    assert "\n    MFU  " in printed
    assert f"{mfu} of {peak:,.1f} TFLOP/s, the dense {precision} peak of NVIDIA A100-SXM4-80GB" in printed
    assert printed.startswith(f"madx bench: xlmr-base shape, batch 64 x seq 256, {precision}, NVIDIA A100-SXM4-80GB")


@pytest.mark.parametrize("device, precision, why", [
    ("NVIDIA A10G", "bf16", "– (peak of NVIDIA A10G unknown)"),
    ("Tesla V100-SXM2-16GB", "bf16", "– (Tesla V100-SXM2-16GB has no dense bf16 peak)"),
])
def test_no_mfu_where_the_peak_is_unknown(device, precision, why):
    from madx.bench.measure import finite, table, with_mfu

    result = with_mfu(measured(device, precision), precision)
    assert result["lang_train"]["mfu"] is None and result["peak_tflops"] is None
    assert re.search(rf"\n    MFU +{re.escape(why)}\n", table(result))
    assert finite(result)  # an unknown peak is no failed measurement
