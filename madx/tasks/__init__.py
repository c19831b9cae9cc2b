"""Task families (token classification, classification, multiple choice, extractive QA): how each reads,
encodes, batches, scores and predicts, and their metrics and baselines."""
