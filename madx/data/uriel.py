"""Typological distances between languages from URIEL (Littell et al., EACL 2017), for choosing the related
languages whose adapters stand in for a language without a corpus (`languages.<l>.related: uriel`).

The vectors are URIEL's as the `lang2vec` package ships them (`pip install 'madx[uriel]'`); madx reads its data
files directly (lang2vec's own module needs setuptools' pkg_resources). madx's distance between two languages is the
mean of three cosine distances: syntactic (URIEL's kNN-predicted syntax features, complete for every language),
genetic (language-family membership) and geographic (location). 0 is the same language; 1 shares nothing.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from pathlib import Path

import numpy as np

from ..core.errors import MadxError

# distance kind -> (lang2vec data file, feature-name prefix)
FEATURES = {"syntactic": ("feature_predictions.npz", "S_"), "genetic": ("family_features.npz", ""),
            "geographic": ("geocoord_features.npz", "")}
PACKAGE = "lang2vec"


class UrielError(MadxError, ValueError):
    pass


def data_dir() -> Path:
    """lang2vec's data folder, found from its installed distribution, not by import: under Snakemake the venv's
    bin/ comes first on sys.path, and lang2vec installs a bin/lang2vec.py script that an import would find instead
    of the package. A clear error when it is not installed."""
    try:
        data = Path(importlib.metadata.distribution(PACKAGE).locate_file(f"{PACKAGE}/data"))
    except importlib.metadata.PackageNotFoundError:
        data = None
    if data is None or not data.is_dir():
        raise UrielError("URIEL distances need the lang2vec package: pip install 'madx[uriel]' (or pip install "
                         "lang2vec); or list the related languages yourself")
    return data


@functools.lru_cache(maxsize=None)
def _table(kind: str) -> tuple[dict, np.ndarray]:
    """{URIEL code: row} and one kind's feature vectors (every language's row), read once per process."""
    name, prefix = FEATURES[kind]
    with np.load(data_dir() / name) as found:
        rows = {str(code): i for i, code in enumerate(found["langs"])}
        data = found["data"][..., 0]
        if prefix:
            data = data[:, [i for i, feature in enumerate(found["feats"]) if feature.startswith(prefix)]]
        return rows, data


def _vector(kind: str, code: str) -> np.ndarray:
    rows, data = _table(kind)
    return data[rows[code]].astype(np.float64)


@functools.lru_cache(maxsize=None)
def _letter_codes() -> dict:
    return json.loads((data_dir() / "letter_codes.json").read_text(encoding="utf-8"))


def uriel_code(code: str) -> str | None:
    """URIEL's ISO 639-3 code for a language code (ISO 639-1 such as `mr`, or 639-3 such as `mar`), or None."""
    code = code.lower().split("-")[0].split("_")[0]
    found = _letter_codes().get(code, code)
    return found if found in _table("syntactic")[0] else None


def distance(a: str, b: str) -> float:
    """madx's URIEL distance between two languages URIEL knows: the mean of the syntactic, genetic and geographic
    cosine distances of their vectors."""
    parts = []
    for kind in FEATURES:
        u, v = _vector(kind, uriel_code(a)), _vector(kind, uriel_code(b))
        norm = np.linalg.norm(u) * np.linalg.norm(v)
        parts.append(1.0 - float(u @ v) / norm if norm else 1.0)  # a language without features shares nothing
    return sum(parts) / len(parts)


def nearest(target: str, candidates: list[str], k: int) -> list[tuple[str, float]]:
    """The `k` candidates nearest to `target` (code, distance), nearest first (ties in the candidates' order);
    candidates URIEL does not know are passed over."""
    if uriel_code(target) is None:
        raise UrielError(f"URIEL does not know the language {target!r} (give an ISO 639-1 or 639-3 code)")
    known = [c for c in candidates if uriel_code(c) is not None]
    return sorted(((c, round(float(distance(target, c)), 4)) for c in known), key=lambda pair: pair[1])[:k]
