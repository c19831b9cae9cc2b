"""The offline demo: a synthetic multilingual benchmark from a seed, and the small base model pretrained on it."""
