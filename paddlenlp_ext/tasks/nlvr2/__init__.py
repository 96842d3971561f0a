"""NLVR2: the builder, examples, and the entry points' helpers (accuracy, consistency, the predictions CSV)."""
