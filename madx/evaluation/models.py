"""The models evaluation runs: the base model with a task head loaded once per job, each run's adapters (a
madx_fusion run's fused adapters and fusion), head, knowledge reader (a head reading K-adapters, each K-adapter
loaded once) and (madx_emb) input embeddings swapped in; full_ft's own fine-tuned model."""

from __future__ import annotations

from pathlib import Path

import torch

from ..adapters.embeddings import (EMBEDDINGS_DIR, EmbeddingLoadError, embeddings_dir, load_embeddings,
                                    swap_input_embeddings)
from ..adapters.composition import Average, Fuse
from ..adapters.fusion_io import load_fusion
from ..adapters.io import load_adapter_beside
from ..adapters.kadapter import (delete_kadapter, kadapters, load_kadapter, load_knowledge_reader, reader_config,
                                 stop_reading_knowledge)
from ..adapters.model import activate, delete_adapter
from ..data import hub
from ..tasks.families import DEFAULT_TASK_TYPE, family, load_head
from ..training.task_output import FULL_MODEL_DIR, fused_adapter_dirs, load_full_model
from .emea import TestTimeWeights
from .runs import Run


def build_eval_model(base_model: str, setup: str, task_dir: Path, label_names: list[str], lang_adapter=None,
                     trust_remote_code: bool = False, task_type: str = DEFAULT_TASK_TYPE):
    """The model one setup evaluates, built alone (a fresh base model), and which adapters it stacks."""
    models = EvalModels(base_model, trust_remote_code, torch.device("cpu"), None)
    run = Run(setup, None, Path(task_dir), lang_adapter, Path("-"))
    return models.model_for(run, label_names, task_type)


class EvalModels:
    """The base model with a task head, loaded once per (task type, label set) and kept on the device in the
    evaluation dtype; language adapters loaded once and kept; a run's task adapter and head swapped in."""

    def __init__(self, base_model: str, trust_remote_code: bool, device: torch.device, dtype):
        self.base_model, self.trust_remote_code, self.device, self.dtype = base_model, trust_remote_code, device, dtype
        self.shared: dict[tuple, torch.nn.Module] = {}  # (task type, label names) -> the base model with that head
        self.lang_names: dict[tuple, str] = {}  # (task type, label names, lang adapter dir) -> its name in that model
        self.task_names: list[str] = []  # the last run's task adapters (a fusion's: each it fuses)
        self.embeddings: dict[str, tuple] = {}  # language adapter dir -> (its embedding matrix, its tokenizer)
        self.swapped: tuple | None = None  # (model, the base's input embeddings) while a run uses its own
        self.adapt: TestTimeWeights | None = None  # the last run's test-time weights (madx_emea), else None
        self.kadapter_dirs: dict[tuple, str] = {}  # (id of a model, K-adapter name) -> the directory loaded as it

    def tokenizer_for(self, run: Run, base_tokenizer):
        """The tokenizer a run's test data is read with: its language adapter's own (madx_emb), or the base's."""
        found = self._embeddings(run)
        return found[1] if found else base_tokenizer

    def _embeddings(self, run: Run) -> tuple | None:
        if not run.setup.new_embeddings:
            return None
        key = str(Path(run.lang_adapter).resolve())
        if key not in self.embeddings:
            directory = run_embeddings(run)
            config = hub.load_config(self.base_model, trust_remote_code=self.trust_remote_code)
            self.embeddings[key] = load_embeddings(directory, hidden_size=config.hidden_size)
        return self.embeddings[key]

    def _model(self, label_names: list[str], task_type: str) -> torch.nn.Module:
        key = (task_type, tuple(label_names))
        if key not in self.shared:
            model = hub.load_task_model(self.base_model, family(task_type).auto_class, label_names,
                                       trust_remote_code=self.trust_remote_code)
            self.shared[key] = model.to(device=self.device, dtype=self.dtype).eval()  # inference only: no fp32 copy
        return self.shared[key]

    def model_for(self, run: Run, label_names: list[str], task_type: str) -> tuple[torch.nn.Module, dict]:
        """The model for `run`, ready to predict, and what it stacks (for the record); `adapt` is then its
        test-time weights (madx_emea) or None."""
        self.adapt = None
        if run.setup.training.full_model:
            model = load_full_model(run.task_dir, family(task_type).auto_class)
            return model.to(device=self.device, dtype=self.dtype).eval(), {"full_model": str(run.task_dir / FULL_MODEL_DIR)}
        model = self._model(label_names, task_type)
        self.release(model)
        load_head(model, run.task_dir)
        own = self._embeddings(run)
        if own is not None:  # the language adapter's own input embeddings, for this run only
            self.swapped = (model, swap_input_embeddings(model, own[0]))
        stack, used = self._language_block(model, run, (task_type, tuple(label_names)))
        if run.setup.training.fusion:
            fused = fused_adapter_dirs(run.task_dir)
            self.task_names = [load_adapter_beside(model, directory) for directory in fused]
            stack.append(Fuse(*self.task_names))
            load_fusion(model, run.task_dir, adapter_names=self.task_names)
            used.update(fused=self.task_names, fused_adapters=[str(directory) for directory in fused])
        else:
            self.task_names = [load_adapter_beside(model, run.task_dir)]
            stack += self.task_names
        used.update(task_adapter=str(run.task_dir), stack=[repr(item) if isinstance(item, (Fuse, Average)) else item
                                                           for item in stack])
        activate(model, *stack)
        knowledge = reader_config(run.task_dir)
        if knowledge is not None:  # a head reading K-adapters: each loaded once per model, its reader swapped in
            for name, directory in knowledge["kadapters"].items():
                self._kadapter(model, name, directory)
            load_knowledge_reader(model, run.task_dir)
            used["knowledge"] = knowledge["kadapters"]
        return model, used

    def _kadapter(self, model: torch.nn.Module, name: str, directory: str) -> None:
        key, wanted = (id(model), name), str(Path(directory).resolve())
        if self.kadapter_dirs.get(key) == wanted:
            return
        if name in kadapters(model):  # another directory's K-adapter of that name
            delete_kadapter(model, name)
        load_kadapter(model, directory, name)
        self.kadapter_dirs[key] = wanted

    def _language_block(self, model: torch.nn.Module, run: Run, head: tuple) -> tuple[list, dict]:
        """What sits under the task adapter, and its record: the run's language adapter, the Average of several
        (madx_avg; their invertible adapters averaged too), or an Average whose weights each test batch learns
        (madx_emea: then `adapt`). Each adapter is loaded once per model (`head`: its task type and labels)."""
        names = []
        for directory in run.lang_adapters:
            key = (*head, str(Path(directory).resolve()))
            if key not in self.lang_names:
                self.lang_names[key] = load_adapter_beside(model, directory)
            names.append(self.lang_names[key])
        if not names:
            return [], {}
        if not run.setup.averages:
            return names, {"lang_adapter": str(run.lang_adapter)}
        if run.setup.test_time_weights:
            self.adapt = TestTimeWeights(model, names, run.emea)
        block = self.adapt.average if self.adapt is not None else Average(*names)
        return [block], {"lang_adapters": [str(directory) for directory in run.lang_adapters]}

    def release(self, model: torch.nn.Module) -> None:
        """Take the last run's task adapters out, and with them its fusion (language adapters stay for the next runs)."""
        for name in self.task_names:
            delete_adapter(model, name)
        self.task_names = []
        stop_reading_knowledge(model)
        if self.swapped is not None:
            swapped_model, base_embeddings = self.swapped
            swapped_model.set_input_embeddings(base_embeddings)
            self.swapped = None


def run_embeddings(run: Run) -> Path:
    """The embeddings directory a madx_emb run's language adapter carries; a clear error when it has none."""
    directory = embeddings_dir(run.lang_adapter)
    if directory is None:
        raise EmbeddingLoadError(f"setup madx_emb (seed {run.seed}): language adapter {run.lang_adapter} has no "
                                 f"{EMBEDDINGS_DIR}/ (train it with --embeddings new or rows)")
    return directory
