"""madx beside its peer, AdapterHub (`adapters`), measured on the same device: `madx bench --peer FILE`.

The peer's figures are the user's input, a JSON object measured on the same device with the same batch and
sequence length (BENCHMARKS.md says how):

    device, batch, seq                 torch's device name, and the shape measured
    adapterhub_lang_dense_tok_s        language-adapter MLM training, logits at every position (run_mlm's way)
    adapterhub_lang_sparse_tok_s       the same, logits at the masked positions only
    bare_infer_tok_s                   the bare encoder's forward
    stack_infer_tok_s                  the encoder with Stack(lang, task)
    adapterhub_peak_mem_gb             optional: peak GPU memory of the dense training
    adapterhub_lang_sparse_tflops      optional: model FLOP/s of the masked-only training (for its MFU)
"""

from __future__ import annotations

import json
from pathlib import Path

from .measure import BenchError

# madx's targets against its peer, as (at least | at most, value)
TARGETS = {
    "lang_over_adapterhub_dense": ("at least", 3.0),
    "lang_over_adapterhub_masked": ("at least", 1.3),
    "mfu": ("at least", 0.35),
    "memory_over_adapterhub": ("at most", 0.5),
    "stack_over_bare": ("at least", 0.9),
}
PEER_KEYS = ("device", "batch", "seq", "adapterhub_lang_dense_tok_s", "adapterhub_lang_sparse_tok_s",
             "bare_infer_tok_s", "stack_infer_tok_s")


def read_peer(path: str | Path, batch: int, seq: int, device: str) -> dict:
    """The peer's figures, checked before any measurement: their keys, this device, the same batch and sequence
    length."""
    path = Path(path)
    try:
        peer = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BenchError(f"--peer {path}: not a readable JSON file ({error})") from None
    missing = [key for key in PEER_KEYS if not isinstance(peer, dict) or key not in peer]
    if missing:
        raise BenchError(f"--peer {path}: no {', '.join(missing)}; the peer's figures need the keys "
                         f"{', '.join(PEER_KEYS)} (`madx bench --help`)")
    if (peer["batch"], peer["seq"]) != (batch, seq):
        raise BenchError(f"--peer {path} measured batch {peer['batch']} x seq {peer['seq']}, this run batch "
                         f"{batch} x seq {seq}; compare the same shape (--batch, --seq)")
    if peer["device"] != device:
        raise BenchError(f"--peer {path} ran on {peer['device']!r}, this device is {device!r}: ratios only mean "
                         "something on one device; measure the peer here")
    return peer


def versus_peer(result: dict, peer: dict) -> dict:
    """madx over AdapterHub on the same device (read_peer checks): the ratios the targets are about."""
    lang, inference = result["lang_train"], result["inference"]
    out = {
        "lang_over_adapterhub_dense": lang["tok_s"] / peer["adapterhub_lang_dense_tok_s"],
        "lang_over_adapterhub_masked": lang["tok_s"] / peer["adapterhub_lang_sparse_tok_s"],
        "stack_over_bare": inference["stack_over_bare"],
        "adapterhub_stack_over_bare": peer["stack_infer_tok_s"] / peer["bare_infer_tok_s"],
    }
    if lang.get("mfu") is not None:
        out["mfu"] = lang["mfu"]
    if "peak_mem_gb" in lang and peer.get("adapterhub_peak_mem_gb"):
        out["memory_over_adapterhub"] = lang["peak_mem_gb"] / peer["adapterhub_peak_mem_gb"]
    out["targets_met"] = {key: _met(key, out[key]) for key in TARGETS if key in out}
    return out


def _met(key: str, value: float) -> bool:
    bound, target = TARGETS[key]
    return value >= target if bound == "at least" else value <= target


def _target(key: str) -> str:
    bound, value = TARGETS[key]
    sign = "≥" if bound == "at least" else "≤"
    return f"{sign}{value:.0%}" if key == "mfu" else f"{sign}{value:g}x"


def comparison_table(result: dict, peer: dict, ratios: dict) -> str:
    """Markdown rows for BENCHMARKS.md: AdapterHub and madx side by side, ratio, target, met."""
    lang, inference = result["lang_train"], result["inference"]

    def met(key):
        return ("yes" if ratios["targets_met"][key] else "**no**") if key in ratios["targets_met"] else "–"

    peak = result.get("peak_tflops")
    peer_mfu = (f"{100 * peer['adapterhub_lang_sparse_tflops'] / peak:.1f}% (masked-only)"
                if peak and peer.get("adapterhub_lang_sparse_tflops") else "–")
    rows = [
        ("LA training vs dense head, tok/s", f"{peer['adapterhub_lang_dense_tok_s']:,.0f}", f"{lang['tok_s']:,.0f}",
         f"{ratios['lang_over_adapterhub_dense']:.2f}x", _target("lang_over_adapterhub_dense"),
         met("lang_over_adapterhub_dense")),
        ("LA training vs masked-only head, tok/s", f"{peer['adapterhub_lang_sparse_tok_s']:,.0f}", f"{lang['tok_s']:,.0f}",
         f"{ratios['lang_over_adapterhub_masked']:.2f}x", _target("lang_over_adapterhub_masked"),
         met("lang_over_adapterhub_masked")),
        ("LA training MFU", peer_mfu, f"{100 * ratios['mfu']:.1f}%" if "mfu" in ratios else "– (peak unknown)", "",
         _target("mfu"), met("mfu")),
        ("LA training peak memory", f"{peer['adapterhub_peak_mem_gb']:.1f} GB" if "memory_over_adapterhub" in ratios
         else "–", f"{lang['peak_mem_gb']:.1f} GB" if "peak_mem_gb" in lang else "– (CPU)",
         f"{ratios['memory_over_adapterhub']:.2f}x" if "memory_over_adapterhub" in ratios else "",
         _target("memory_over_adapterhub"), met("memory_over_adapterhub")),
        ("bare encoder inference, tok/s", f"{peer['bare_infer_tok_s']:,.0f}", f"{inference['bare_infer_tok_s']:,.0f}",
         "", "", ""),
        ("Stack(lang, task) inference, tok/s", f"{peer['stack_infer_tok_s']:,.0f} "
         f"({ratios['adapterhub_stack_over_bare']:.2f}x bare)", f"{inference['stack_infer_tok_s']:,.0f} "
         f"({ratios['stack_over_bare']:.2f}x bare)", "", _target("stack_over_bare") + " bare", met("stack_over_bare")),
    ]
    lines = ["| what | AdapterHub | madx | madx / AdapterHub | target | met |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if result.get("shape") != "xlmr-base" or result["device"] == "cpu":
        lines.append("\n(the targets are for the xlmr-base shape, batch 64 x seq 256, bf16 on a GPU; "
                     "elsewhere they are shown for reference only)")
    return "\n".join(lines)
