"""Per-image seeds: a function of (suite@version, prompt_id, sample_idx, run seed) ONLY.

Never of rank, batch size or world size, so a result does not depend on how many GPUs produced it (the
reference implementation and Flow-GRPO seed with ``seed + rank`` and so do).
"""

from __future__ import annotations

import hashlib

SEED_BITS = 63  # torch.Generator.manual_seed accepts [0, 2**64); stay in int64 for JSON/numpy safety


def item_seed(suite_id: str, prompt_id: int, sample_idx: int, run_seed: int) -> int:
    """``sha256("suite@version|prompt_id|sample_idx|run_seed")`` truncated to 63 bits.

    >>> item_seed("smoke@1", 0, 0, 0) == item_seed("smoke@1", 0, 0, 0)
    True
    >>> item_seed("smoke@1", 0, 0, 0) != item_seed("smoke@1", 0, 1, 0)
    True
    """
    key = f"{suite_id}|{int(prompt_id)}|{int(sample_idx)}|{int(run_seed)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & ((1 << SEED_BITS) - 1)
