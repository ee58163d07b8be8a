"""Training: datasets, staged schedule, DDP engine (see engine.py)."""
