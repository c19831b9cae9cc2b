"""`madx bench`: throughput, model FLOP utilisation and memory of madx's training and inference on shapes built
in memory, and where a step's time goes."""
