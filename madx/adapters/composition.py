"""How active adapters combine in every layer: a Stack runs its items one after another; a Fuse and an Average run
their adapters side by side on the same input. A Fuse lets a learned fusion layer attend over their outputs
(AdapterFusion, Pfeiffer et al. 2021); an Average takes their weighted mean, fixed weights (uniform, or given), an
ensemble of related languages' adapters whose invertible adapters are averaged too.

`madx.activate(model, "sw", madx.Fuse("ner", "pos"))` is the same setup as
`madx.activate(model, madx.Stack("sw", madx.Fuse("ner", "pos")))`: the language adapter, then the fusion;
`madx.activate(model, madx.Average("hi", "ar"), "ner")` stacks the task adapter on the average of two language
adapters.
"""

from __future__ import annotations

from ..core.errors import InputError


class Group:
    """Adapters at one position of the stack, side by side on the same input (a Fuse or an Average)."""

    kind = "Group"

    def __init__(self, *names: str):
        if len(names) == 1 and isinstance(names[0], (list, tuple)):
            names = tuple(names[0])
        if not names or not all(isinstance(n, str) for n in names):
            raise InputError(f"{self.kind} takes adapter names, got {names!r}")
        if len(set(names)) != len(names):
            raise InputError(f"adapter names repeat in {self.kind}{names}")
        self.names = tuple(names)

    @property
    def name(self) -> str:
        return ",".join(self.names)

    def _key(self) -> tuple:
        return (self.kind, self.names)

    def __eq__(self, other) -> bool:
        return isinstance(other, Group) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"{self.kind}({', '.join(map(repr, self.names))})"


class Fuse(Group):
    """The fusion of adapters `names`, in this order; its name is AdapterHub's: the names joined by commas."""

    kind = "Fuse"

    @classmethod
    def of(cls, names) -> Fuse:
        """A Fuse from a Fuse, a list of adapter names, or a fusion's name ("a,b", AdapterHub's)."""
        if isinstance(names, Fuse):
            return names
        return cls(*names.split(",")) if isinstance(names, str) else cls(*names)


EMBEDDINGS = "embeddings"  # the position of the invertible adapters, beside the layers' (layer, "attention"|"output")


class Average(Group):
    """The weighted mean of adapters `names`' outputs in every layer (and of their invertible adapters' on the
    embeddings), `weights` normalised to sum 1 (uniform when not given). A layer where some adapters are left out
    (leave_out) averages those it has, their weights renormalised.

    `scores`: weights of its own at every position instead, softmax(scores[position]) (a tensor of one score per
    adapter, keyed by (layer, "attention"|"output") and EMBEDDINGS): what EMEA learns for each test batch."""

    kind = "Average"

    def __init__(self, *names: str, weights=None, scores: dict | None = None):
        super().__init__(*names)
        if weights is None:
            weights = [1.0] * len(self.names)
        weights = [float(w) for w in weights]
        if len(weights) != len(self.names) or any(w < 0 or w != w for w in weights) or sum(weights) <= 0:
            raise InputError(f"Average{self.names}: weights {weights} must be {len(self.names)} numbers >= 0 "
                             "with a positive sum (one per adapter)")
        self.weights = tuple(w / sum(weights) for w in weights)
        if scores is not None and any(tuple(s.shape) != (len(self.names),) for s in scores.values()):
            raise InputError(f"Average{self.names}: scores must hold one score per adapter at each position")
        self.scores = scores

    def weights_at(self, position) -> tuple:
        """The adapters' weights at one position: the fixed ones, or softmax of that position's scores."""
        if self.scores is None:
            return self.weights
        import torch

        return tuple(torch.softmax(self.scores[position], dim=0).unbind())

    def _key(self) -> tuple:
        return (self.kind, self.names, self.weights, id(self.scores) if self.scores is not None else None)

    def __repr__(self) -> str:
        uniform = len(set(self.weights)) == 1
        weights = "" if uniform else f", weights={[round(w, 6) for w in self.weights]}"
        weights = ", weights per position" if self.scores is not None else weights
        return f"Average({', '.join(map(repr, self.names))}{weights})"


class Stack:
    """Adapters (and fusions, averages) applied one after another in every layer; the first is the language
    adapter."""

    def __init__(self, *items: str | Group):
        for item in items:
            if not isinstance(item, (str, Group)):
                raise InputError(f"a Stack holds adapter names, Fuse(...) and Average(...) blocks, got {item!r}")
        self.items = tuple(items)

    def __eq__(self, other) -> bool:
        return isinstance(other, Stack) and other.items == self.items

    def __hash__(self) -> int:
        return hash(("Stack", self.items))

    def __repr__(self) -> str:
        return f"Stack({', '.join(map(repr, self.items))})"


def flatten(setup) -> tuple:
    """activate()'s arguments as the stack's items: a single Stack is unpacked, names and Fuse / Average blocks stay."""
    if len(setup) == 1 and isinstance(setup[0], Stack):
        return setup[0].items
    for item in setup:
        if isinstance(item, Stack):
            raise InputError(f"a Stack inside a stack is the same as its items in place: pass {item.items} instead")
        if not isinstance(item, (str, Group)):
            raise InputError(f"activate() takes adapter names, Fuse(...), Average(...) or one Stack(...), got {item!r}")
    return tuple(setup)


def adapter_names(items) -> tuple[str, ...]:
    """Every adapter name the items use, each once, in order of first use."""
    names = []
    for item in items:
        for name in item.names if isinstance(item, Group) else (item,):
            if name not in names:
                names.append(name)
    return tuple(names)
