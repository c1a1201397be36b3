"""Test support that ships with the package: tiny random weights in the production layout.

``write_tiny_weights(root)`` writes, for every registered model and reward that has a tiny variant, random
weights of the real architectures (diffusers / transformers / open_clip classes with tiny configs and
offline tokenizers) under the same relative paths the production loaders read. ``--weights tiny`` uses a
cached copy (``rtdmd_bench.weights.tiny_root``); tests call this directly into a temporary directory.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_weights(root: str | Path) -> Path:
    """Write tiny random weights for every model and reward into ``root``; returns ``root``."""
    import torch

    from rtdmd_bench.eval.runner import quiet_hf
    from rtdmd_bench.weights import TINY_MARKER

    quiet_hf()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)  # tiny weights are a deterministic function of the code
        from rtdmd_bench.models.tiny import write_tiny_models

        write_tiny_models(root)
        try:
            from rtdmd_bench.rewards.tiny import write_tiny_rewards
        except ImportError:  # neural scorers not present in this build
            write_tiny_rewards = None
        if write_tiny_rewards is not None:
            write_tiny_rewards(root)
    finally:
        torch.random.set_rng_state(state)
    (root / TINY_MARKER).write_text("tiny random weights: results computed on them are not real model numbers\n")
    return root
