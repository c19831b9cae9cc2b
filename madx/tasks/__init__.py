"""Task families, one module each (tagging: ner, pos; classification; multiple_choice; qa) on base.Family, found
through the registry in families.py; the metrics and baselines they share in metrics.py."""
