"""`madx bench --shape tiny` runs on the CPU and prints finite figures (a smoke test: no speed is asserted)."""

import json
import math

from madx.cli import main as cli


def test_tiny_bench_runs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli(["bench", "--shape", "tiny", "--batch", "8", "--seq", "32", "--steps", "2", "--warmup", "1",
                "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "language-adapter training" in printed and "Stack(lang, task) inference" in printed
    result = json.loads(out.read_text())
    figures = [result["lang_train"]["tok_s"], result["lang_train"]["tflops"], result["task_train"]["tok_s"],
               *[v for v in result["inference"].values()]]
    assert all(math.isfinite(v) and v > 0 for v in figures)
    assert result["lang_train"]["trainable"] > 0
