"""Benchmarks that print figures: `python -m bench [name...]` (see bench/__main__.py).

Each module here with a `run()` is one bench; `run()` prints its own figures and returns them.
"""
