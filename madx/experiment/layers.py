"""Settings made of layered config sections: (key path, keys set there), later over earlier. A value's key path
is where an error about it points."""

from __future__ import annotations

from typing import Mapping

Layers = list[tuple[str, Mapping]]


def merged(layers: Layers) -> dict:
    return {key: value for _, section in layers for key, value in section.items()}


def written_at(layers: Layers, name: str) -> str:
    """The key path where the value of setting `name` was written (the last section setting it), or where it would go
    (the first section's) with '(default)'."""
    for path, section in reversed(layers):
        if name in section:
            return f"{path}.{name}"
    return f"{layers[0][0]}.{name} (default)"
