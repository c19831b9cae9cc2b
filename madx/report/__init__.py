"""The report: evaluation results as rows and means, report.md with its CSV tables, and the figures."""
