"""AdapterConfig: the typed description of one bottleneck adapter, and its AdapterHub form."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import MadxError
from ..core.settings import option

ARCHITECTURES = ("pfeiffer", "houlsby")
NON_LINEARITIES = ("relu", "gelu", "gelu_new", "swish")

# AdapterHub's names for our two architectures, and the BnConfig fields that define them.
# Loading checks every one of these fields, so an adapter we cannot compute exactly is refused.
_HUB_ARCHITECTURE = {
    "pfeiffer": dict(original_ln_before=True, mh_adapter=False),
    "houlsby": dict(original_ln_before=False, mh_adapter=True),
}
_HUB_FIXED = dict(
    original_ln_after=True,
    residual_before_ln=True,
    adapter_residual_before_ln=False,
    ln_before=False,
    ln_after=False,
    output_adapter=True,
    is_parallel=False,
    scaling=1.0,
    use_gating=False,
    phm_layer=False,
)
# Fields AdapterHub writes that have no effect on a plain bottleneck adapter's function.
_HUB_INERT = dict(
    cross_adapter=False,
    dropout=0.0,
    factorized_phm_W=True,
    factorized_phm_rule=False,
    hypercomplex_nonlinearity="glorot-uniform",
    init_weights="mam_adapter",  # kaiming-uniform down projection, zero up projection: what madx does
    init_weights_seed=None,
    learn_phm=True,
    phm_bias=True,
    phm_c_init="normal",
    phm_dim=4,
    phm_init_range=0.0001,
    phm_rank=1,
    shared_W_phm=False,
    shared_phm_rule=True,
    stochastic_depth=0.0,
)


class AdapterConfigError(MadxError, ValueError):
    """An adapter configuration that madx cannot build or compute exactly."""


@dataclass(frozen=True)
class AdapterConfig:
    architecture: str = option("pfeiffer", "pfeiffer (AdapterHub seq_bn: after the FFN) or houlsby (double_seq_bn: "
                               "also after attention)", choices=ARCHITECTURES)
    reduction_factor: float = option(16, "bottleneck width = hidden_size // reduction_factor")
    non_linearity: str = option("relu", "the bottleneck's activation (gelu_new: tanh GELU of legacy adapters)",
                                choices=NON_LINEARITIES)
    invertible: bool = option(False, "NICE invertible adapter on the embeddings (MAD-X language adapters)")
    inv_reduction_factor: float = option(2, "bottleneck of the invertible adapter's F and G")
    leave_out: tuple[int, ...] = option((), "layers without adapters (MAD-X 2.0 leaves out the last)")

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise AdapterConfigError(
                f"architecture={self.architecture!r} is not supported; use one of {ARCHITECTURES}"
            )
        if self.non_linearity not in NON_LINEARITIES:
            raise AdapterConfigError(
                f"non_linearity={self.non_linearity!r} is not supported; use one of {NON_LINEARITIES}"
            )
        for key in ("reduction_factor", "inv_reduction_factor"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise AdapterConfigError(f"{key}={value!r} must be a positive number")
            if isinstance(value, float) and value.is_integer():  # 16.0 from a command line is AdapterHub's 16
                object.__setattr__(self, key, int(value))
        leave_out = self.leave_out
        if isinstance(leave_out, int) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in leave_out
        ):
            raise AdapterConfigError(f"leave_out={leave_out!r} must be a list of layer indices (ints >= 0)")
        object.__setattr__(self, "leave_out", tuple(sorted(set(leave_out))))

    def bottleneck_size(self, hidden_size: int) -> int:
        # AdapterHub: int(hidden_size // reduction_factor), at least 1
        return max(1, int(hidden_size // self.reduction_factor))

    def to_adapterhub(self) -> dict:
        """The `config` dict AdapterHub's `adapters` writes in adapter_config.json."""
        hub = dict(_HUB_INERT, **_HUB_FIXED, **_HUB_ARCHITECTURE[self.architecture])
        hub.update(
            reduction_factor=self.reduction_factor,
            non_linearity=self.non_linearity,
            leave_out=list(self.leave_out),
            inv_adapter="nice" if self.invertible else None,
            inv_adapter_reduction_factor=self.inv_reduction_factor if self.invertible else None,
        )
        return dict(sorted(hub.items()))

    @classmethod
    def from_adapterhub(cls, hub: dict, *, legacy: bool = False, where: str = "adapter config") -> "AdapterConfig":
        """Read AdapterHub's `config` dict; refuse anything madx would not compute exactly.

        `legacy`: the file has no "version" (adapter-transformers 2.x), where "gelu" meant tanh GELU.
        """
        if not isinstance(hub, dict):
            raise AdapterConfigError(f"{where}: 'config' must be a JSON object, got {type(hub).__name__}")
        if hub.get("architecture") not in (None, "bottleneck"):
            raise AdapterConfigError(
                f"{where}: architecture={hub['architecture']!r} is not a bottleneck adapter; "
                "madx loads seq_bn (Pfeiffer) and double_seq_bn (Houlsby) adapters only"
            )
        for key, expected in _HUB_FIXED.items():
            if key in hub and hub[key] != expected:
                raise AdapterConfigError(
                    f"{where}: {key}={hub[key]!r} is not supported (madx computes {key}={expected!r}); "
                    "only seq_bn (Pfeiffer) and double_seq_bn (Houlsby) adapters load"
                )
        architecture = next(
            (name for name, fields in _HUB_ARCHITECTURE.items()
             if all(hub.get(k, v) == v for k, v in fields.items())),
            None,
        )
        if architecture is None:
            raise AdapterConfigError(
                f"{where}: original_ln_before={hub.get('original_ln_before')!r} with "
                f"mh_adapter={hub.get('mh_adapter')!r} is neither seq_bn nor double_seq_bn"
            )
        inv = hub.get("inv_adapter")
        if inv not in (None, "nice"):
            raise AdapterConfigError(f"{where}: inv_adapter={inv!r} is not supported; madx has the NICE invertible adapter")
        reduction_factor = hub.get("reduction_factor", 16)
        if isinstance(reduction_factor, dict):
            raise AdapterConfigError(f"{where}: a per-layer reduction_factor mapping is not supported")
        non_linearity = str(hub.get("non_linearity", "relu")).lower()
        if legacy and non_linearity == "gelu":
            non_linearity = "gelu_new"
        non_linearity = {"gelu_orig": "gelu", "silu": "swish"}.get(non_linearity, non_linearity)
        try:
            return cls(
                architecture=architecture,
                reduction_factor=reduction_factor,
                non_linearity=non_linearity,
                invertible=inv == "nice",
                inv_reduction_factor=hub.get("inv_adapter_reduction_factor") or 2,
                leave_out=tuple(hub.get("leave_out") or ()),
            )
        except AdapterConfigError as err:
            raise AdapterConfigError(f"{where}: {err}") from None


# MAD-X defaults (Pfeiffer et al. 2020): language adapters rf 2 with an invertible adapter, task adapters rf 16.
LANGUAGE_ADAPTER = AdapterConfig(reduction_factor=2, invertible=True)
TASK_ADAPTER = AdapterConfig(reduction_factor=16)
