"""The evaluation setups MAD-X is compared under: which trained model each uses, and which language adapter
(the target's, the source's, or none) sits under the task adapter."""

# madx_translit and madx_emb are for a target whose script the base model cannot read (only where a language
# asks for them): madx's task adapter on the target's adapter trained on its romanized corpus (the test data
# romanized the same way), or on its adapter trained together with new input embeddings
NEW_SCRIPT_SETUPS = ("madx_translit", "madx_emb")
DEFAULT_SETUPS = ("madx", "source_la", "task_only", "full_ft")  # a config's `setups` when it gives none
EVAL_SETUPS = (*DEFAULT_SETUPS, *NEW_SCRIPT_SETUPS)
# the task training each setup evaluates: source_la and the new-script setups use madx's task adapter
TRAINED_BY = {"madx": "madx", "source_la": "madx", "task_only": "task_only", "full_ft": "full_ft",
              "madx_translit": "madx", "madx_emb": "madx"}
TRAIN_SETUPS = tuple(dict.fromkeys(TRAINED_BY.values()))
# the language adapter under the task adapter: while it trains (on the source), and at evaluation
TRAIN_LANG_ADAPTER = {"madx": "source", "task_only": None, "full_ft": None}
EVAL_LANG_ADAPTER = {"madx": "target", "source_la": "source", "task_only": None, "full_ft": None,
                     "madx_translit": "target", "madx_emb": "target"}
# what each setup is, in the report's words
DESCRIPTIONS = {
    "madx": "target language adapter + task adapter",
    "source_la": "source language adapter kept (no swap)",
    "task_only": "task adapter without language adapters",
    "full_ft": "the base model fine-tuned",
    "madx_translit": "madx on the target romanized (its language adapter trained on the romanized corpus)",
    "madx_emb": "madx with the target's language adapter trained together with new input embeddings",
}
# which of the target's language adapters: its plain one, or the one of a new-script setup
LANG_ADAPTER_KIND = {"madx_translit": "translit", "madx_emb": "emb"}


def lang_adapter_for(setup: str, source: str, target: str) -> str | None:
    """The language whose adapter `setup` stacks under the task adapter when evaluating on `target`."""
    role = EVAL_LANG_ADAPTER[setup]
    return {"source": source, "target": target, None: None}[role]
