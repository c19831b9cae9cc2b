"""The evaluation setups MAD-X is compared under, and which trained model each one uses."""

EVAL_SETUPS = ("madx", "source_la", "task_only", "full_ft")
TRAIN_SETUPS = ("madx", "task_only", "full_ft")
TRAINED_BY = {"madx": "madx", "source_la": "madx", "task_only": "task_only", "full_ft": "full_ft"}
