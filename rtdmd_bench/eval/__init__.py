"""The one evaluation path: ``evaluate(cfg)`` (see eval/runner.py) and the results schema (eval/schema.py)."""

from __future__ import annotations


def evaluate(*args, **kwargs):
    """Lazy re-export of ``rtdmd_bench.eval.runner.evaluate`` (keeps ``import rtdmd_bench.eval`` light)."""
    from rtdmd_bench.eval.runner import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
