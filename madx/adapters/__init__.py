"""Adapters in a Hugging Face encoder: their config, the bottleneck and invertible modules, wrapping a model,
and the AdapterHub on-disk formats of adapters, prediction heads and new input embeddings."""
