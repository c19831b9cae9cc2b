"""Training: the accelerator and precision, the batches of each step, checkpoints, progress, the loop, masked
language modelling, and the language-adapter and task trainings built on them."""
