"""Data and what reads it: unlabelled corpora, labelled token and text data, base models and tokenizers from a
hub id or a local path, sentencepiece tokenizers, romanization, and tokenizer coverage."""
