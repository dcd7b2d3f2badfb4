"""Shared test helpers, one module per area: ``from helpers.serving import World``.

Importable because pytest puts ``tests/`` (the folder of the top-level conftest.py) on ``sys.path``.
"""
