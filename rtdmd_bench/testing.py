"""Test support that ships with the package: tiny random weights in the production layout.

``write_tiny_weights(root)`` writes every part of the tiny weights (generators, scorers): random weights of the
real architectures (diffusers / transformers / open_clip classes with tiny configs and offline tokenizers) under
the same relative paths the production loaders read. ``--weights tiny`` builds the parts it needs on demand into
a cache (``rtdmd_bench.weights.tiny_root``) through the same ``ensure_tiny_part``; tests call this directly into a
temporary directory.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_weights(root: str | Path) -> Path:
    """Write tiny random weights for every model and reward into ``root``; returns ``root``."""
    from rtdmd_bench.models import TINY_PART as MODELS_PART
    from rtdmd_bench.rewards import TINY_PART as REWARDS_PART
    from rtdmd_bench.weights import ensure_tiny_part

    root = Path(root)
    for part in (MODELS_PART, REWARDS_PART):
        ensure_tiny_part(root, part)
    return root
