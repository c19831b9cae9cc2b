"""How active adapters combine in every layer: a Stack runs its items one after another, a Fuse runs its adapters side
by side and lets a learned fusion layer attend over their outputs (AdapterFusion, Pfeiffer et al. 2021).

`madx.activate(model, "sw", madx.Fuse("ner", "pos"))` is the same setup as
`madx.activate(model, madx.Stack("sw", madx.Fuse("ner", "pos")))`: the language adapter, then the fusion.
"""

from __future__ import annotations

from ..core.errors import InputError


class Fuse:
    """The fusion of adapters `names`, in this order; its name is AdapterHub's: the names joined by commas."""

    def __init__(self, *names: str):
        if len(names) == 1 and isinstance(names[0], (list, tuple)):
            names = tuple(names[0])
        if not names or not all(isinstance(n, str) for n in names):
            raise InputError(f"Fuse takes adapter names, got {names!r}")
        if len(set(names)) != len(names):
            raise InputError(f"adapter names repeat in Fuse{names}")
        self.names = tuple(names)

    @classmethod
    def of(cls, names) -> Fuse:
        """A Fuse from a Fuse, a list of adapter names, or a fusion's name ("a,b", AdapterHub's)."""
        if isinstance(names, Fuse):
            return names
        return cls(*names.split(",")) if isinstance(names, str) else cls(*names)

    @property
    def name(self) -> str:
        return ",".join(self.names)

    def __eq__(self, other) -> bool:
        return isinstance(other, Fuse) and other.names == self.names

    def __hash__(self) -> int:
        return hash(("Fuse", self.names))

    def __repr__(self) -> str:
        return f"Fuse({', '.join(map(repr, self.names))})"


class Stack:
    """Adapters (and fusions) applied one after another in every layer; the first is the language adapter."""

    def __init__(self, *items: str | Fuse):
        for item in items:
            if not isinstance(item, (str, Fuse)):
                raise InputError(f"a Stack holds adapter names and Fuse(...) blocks, got {item!r}")
        self.items = tuple(items)

    def __eq__(self, other) -> bool:
        return isinstance(other, Stack) and other.items == self.items

    def __hash__(self) -> int:
        return hash(("Stack", self.items))

    def __repr__(self) -> str:
        return f"Stack({', '.join(map(repr, self.items))})"


def flatten(setup) -> tuple:
    """activate()'s arguments as the stack's items: a single Stack is unpacked, names and Fuse blocks stay."""
    if len(setup) == 1 and isinstance(setup[0], Stack):
        return setup[0].items
    for item in setup:
        if isinstance(item, Stack):
            raise InputError(f"a Stack inside a stack is the same as its items in place: pass {item.items} instead")
        if not isinstance(item, (str, Fuse)):
            raise InputError(f"activate() takes adapter names, Fuse(...) or one Stack(...), got {item!r}")
    return tuple(setup)


def adapter_names(items) -> tuple[str, ...]:
    """Every adapter name the items use, each once, in order of first use."""
    names = []
    for item in items:
        for name in item.names if isinstance(item, Fuse) else (item,):
            if name not in names:
                names.append(name)
    return tuple(names)
