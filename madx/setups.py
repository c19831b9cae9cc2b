"""The evaluation setups MAD-X is compared under: which trained model each uses, and which language adapter
(the target's, the source's, or none) sits under the task adapter."""

EVAL_SETUPS = ("madx", "source_la", "task_only", "full_ft")
# the task training each setup evaluates: source_la is madx's task adapter, kept on the source language adapter
TRAINED_BY = {"madx": "madx", "source_la": "madx", "task_only": "task_only", "full_ft": "full_ft"}
TRAIN_SETUPS = tuple(dict.fromkeys(TRAINED_BY.values()))
# the language adapter under the task adapter: while it trains (on the source), and at evaluation
TRAIN_LANG_ADAPTER = {"madx": "source", "task_only": None, "full_ft": None}
EVAL_LANG_ADAPTER = {"madx": "target", "source_la": "source", "task_only": None, "full_ft": None}


def lang_adapter_for(setup: str, source: str, target: str) -> str | None:
    """The language whose adapter `setup` stacks under the task adapter when evaluating on `target`."""
    role = EVAL_LANG_ADAPTER[setup]
    return {"source": source, "target": target, None: None}[role]
