"""Tune stage: an Optuna study over params.yaml ``tune.space`` (see tune.py)."""
