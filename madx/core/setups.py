"""The evaluation setups MAD-X is compared under, as objects: which task training each evaluates, which language
adapter (the target's, the source's, or none) sits under the task adapter, and which of the target's adapters.
Every other module asks a setup; none compares setup names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Training:
    """A task training that setups evaluate (`madx train-task --setup`)."""

    name: str
    on_source_adapter: bool  # the task adapter is trained stacked on the source language's adapter
    full_model: bool = False  # the whole base model is fine-tuned: no adapters, the model is saved whole
    # AdapterFusion: the training whose task adapters it fuses (the task's own and those of the tasks in
    # tasks.<t>.fuse), frozen under a fusion layer trained with a head, on the source language adapter
    fuses: str | None = None
    # target-language-ready (TLR, Parović et al. 2023): the language adapter under the task adapter changes from step
    # to step, the source's and the targets' in turn, so the task adapter learns to read the ones it meets at test time
    target_ready: bool = False

    @property
    def fusion(self) -> bool:
        return self.fuses is not None


@dataclass(frozen=True)
class Setup:
    name: str
    description: str  # in the report's words
    training: Training
    # under the task adapter at evaluation: "source", "target", "related" (the target's related languages' adapters,
    # languages.<target>.related: for a target with no corpus) or None
    lang_adapter: str | None
    # which of the target's language adapters: None (its plain one), "translit" (trained on its romanized corpus,
    # the test data romanized the same way) or "emb" (trained together with new input embeddings)
    adapter_kind: str | None = None
    averages: bool = False  # "related": the average of the first k related languages' adapters (else the first's)
    test_time_weights: bool = False  # the average's weights learned on each test batch (EMEA), not uniform

    @property
    def new_script(self) -> bool:
        """Only for a target whose script the base model cannot read, where a language asks for it."""
        return self.adapter_kind is not None

    @property
    def romanizes(self) -> bool:
        return self.adapter_kind == "translit"

    @property
    def new_embeddings(self) -> bool:
        return self.adapter_kind == "emb"

    @property
    def stacks_target(self) -> bool:
        """Stacks the target language's own adapter (it runs only for a target that has one)."""
        return self.lang_adapter == "target"

    @property
    def related(self) -> bool:
        """Stacks the adapters of the target's related languages (the Experiment says which), not its own."""
        return self.lang_adapter == "related"

    def lang_adapter_for(self, source: str, target: str) -> str | None:
        """The language whose adapter this setup stacks under the task adapter when evaluating on `target` (a
        `related` setup's languages are the target's configured ones: Experiment.eval_adapter_langs)."""
        if self.related:
            raise ValueError(f"setup {self.name} stacks the target's related languages' adapters: the experiment "
                             "names them")
        return {"source": source, "target": target, None: None}[self.lang_adapter]


# AdapterFusion's configurations by name (adapters/fusion.py PRESETS defines them), here for the config and the CLI,
# which read them without torch
FUSION_PRESETS = ("dynamic", "static")
DEFAULT_FUSION = "dynamic"  # the paper's and AdapterHub's default

MADX = Training("madx", on_source_adapter=True)
TASK_ONLY = Training("task_only", on_source_adapter=False)
FULL_FT = Training("full_ft", on_source_adapter=False, full_model=True)
MADX_FUSION = Training("madx_fusion", on_source_adapter=True, fuses=MADX.name)
MADX_TLR = Training("madx_tlr", on_source_adapter=True, target_ready=True)
TRAININGS = {t.name: t for t in (MADX, TASK_ONLY, FULL_FT, MADX_FUSION, MADX_TLR)}

SETUPS = {s.name: s for s in (
    Setup("madx", "target language adapter + task adapter", MADX, "target"),
    Setup("source_la", "source language adapter kept (no swap)", MADX, "source"),
    Setup("task_only", "task adapter without language adapters", TASK_ONLY, None),
    Setup("full_ft", "the base model fine-tuned", FULL_FT, None),
    Setup("madx_translit", "madx on the target romanized (its language adapter trained on the romanized corpus)",
          MADX, "target", adapter_kind="translit"),
    Setup("madx_emb", "madx with the target's language adapter trained together with new input embeddings",
          MADX, "target", adapter_kind="emb"),
    Setup("madx_fusion", "target language adapter + a fusion of task adapters (AdapterFusion: this task's and "
          "those it fuses)", MADX_FUSION, "target"),
    Setup("madx_tlr", "target language adapter + a target-ready task adapter (trained over the source's and the "
          "targets' language adapters in turn: TLR)", MADX_TLR, "target"),
    Setup("madx_nearest", "the nearest related language's adapter + task adapter (for a target with no corpus)", MADX,
          "related"),
    Setup("madx_avg", "the average of the related languages' adapters (and of their invertible adapters) + task "
          "adapter", MADX, "related", averages=True),
    Setup("madx_emea", "madx_avg with the average's weights learned on each test batch by entropy minimisation "
          "(EMEA, Wang et al. 2021)", MADX, "related", averages=True, test_time_weights=True),
)}

EVAL_SETUPS = tuple(SETUPS)  # in the report's order
NEW_SCRIPT_SETUPS = tuple(name for name, s in SETUPS.items() if s.new_script)
FUSION_SETUPS = tuple(name for name, s in SETUPS.items() if s.training.fusion)  # run where a task fuses others
RELATED_SETUPS = tuple(name for name, s in SETUPS.items() if s.related)  # run where a language names related ones
TLR_SETUPS = tuple(name for name, s in SETUPS.items() if s.training.target_ready)  # listed in `setups` to run
DEFAULT_SETUPS = tuple(name for name in SETUPS  # `setups` unset
                       if name not in (*NEW_SCRIPT_SETUPS, *FUSION_SETUPS, *RELATED_SETUPS, *TLR_SETUPS))
DEFAULT_RELATED_K = 3  # madx_avg averages the first k related languages' adapters (languages.<l>.k)
URIEL = "uriel"  # languages.<l>.related: uriel: the k nearest by URIEL distance (madx/data/uriel.py)
TRAIN_SETUPS = tuple(TRAININGS)
ADAPTER_KINDS = tuple(dict.fromkeys(s.adapter_kind for s in SETUPS.values() if s.adapter_kind))


def compared_with(fusion: str) -> str:
    """The setup a fusion setup is measured against: the one that evaluates the trainings it fuses the same way
    (madx_fusion: madx, the same target language adapter under the task's own adapter alone)."""
    fused = SETUPS[fusion]
    return next(name for name, s in SETUPS.items() if s.training.name == fused.training.fuses
                and s.lang_adapter == fused.lang_adapter and s.adapter_kind == fused.adapter_kind)


def script_setup(kind: str) -> Setup:
    """The new-script setup that evaluates on the target's language adapter of `kind` (one of ADAPTER_KINDS)."""
    found = [s for s in SETUPS.values() if s.adapter_kind == kind]
    if not found:
        raise ValueError(f"new-script adapter kind {kind!r}; the kinds are {', '.join(ADAPTER_KINDS)}")
    return found[0]


def setup(name: str) -> Setup:
    try:
        return SETUPS[name]
    except KeyError:
        raise ValueError(f"setup {name!r}; the setups are {', '.join(SETUPS)}") from None


def training(name: str) -> Training:
    try:
        return TRAININGS[name]
    except KeyError:
        raise ValueError(f"setup {name!r}; train-task setups are {', '.join(TRAININGS)}") from None
