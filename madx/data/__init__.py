"""Data and what reads it: unlabelled corpora, labelled records from a file or the hub (each task family reads its
fields: madx/tasks/), base models and tokenizers from a hub id or a local path, sentencepiece tokenizers,
romanization, and tokenizer coverage."""
