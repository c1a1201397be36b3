"""Every seeding scheme of the package, in one place.

Our own schemes hash their keys with sha256 (``hash_seed``), so a value depends on the keys only:

* ``item_seed``: an evaluation image's seed, a function of (suite@version, prompt_id, sample_idx, run seed)
  ONLY, never of rank, batch size or world size, so a result does not depend on how many GPUs produced it
  (the reference implementation and Flow-GRPO seed with ``seed + rank`` and so do).
* ``key_seed``: the trainers' counter-based randomness (``training.backbone.SampleRNG``).

The reference implementation's additive schemes are reproduced for parity of the stage-2 rollouts and prompt
order (ALGORITHM.md §2.4, §4.3, §4.4): ``shared_noise_seed``, ``step_subset_seed``, ``k_repeat_seed`` and
``epoch_shuffle_seed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SEED_BITS = 63  # torch.Generator.manual_seed accepts [0, 2**64); stay in int64 for JSON/numpy safety


def hash_seed(key: bytes) -> int:
    """The first 8 bytes of ``sha256(key)`` (big-endian) masked to ``SEED_BITS`` bits."""
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & ((1 << SEED_BITS) - 1)


def item_seed(suite_id: str, prompt_id: int, sample_idx: int, run_seed: int) -> int:
    """``hash_seed("suite@version|prompt_id|sample_idx|run_seed")``.

    >>> item_seed("smoke@1", 0, 0, 0) == item_seed("smoke@1", 0, 0, 0)
    True
    >>> item_seed("smoke@1", 0, 0, 0) != item_seed("smoke@1", 0, 1, 0)
    True
    """
    return hash_seed(f"{suite_id}|{int(prompt_id)}|{int(sample_idx)}|{int(run_seed)}".encode())


def key_seed(*keys: Any) -> int:
    """``hash_seed(repr(keys))`` for any tuple of ints/strings (stable across processes and Python versions)."""
    return hash_seed(repr(keys).encode())


# ---------------------------------------------------------------------------------------------- reference parity
def shared_noise_seed(prompt: str, step: int, epoch: int) -> int:
    """``(int.from_bytes(sha256(p)[:4], 'big') + 10007·k + 100000·epoch) mod 2^31`` (reference
    ``_make_shared_noise``: one CPS noise per prompt for a stochastic step not in S, §2.4)."""
    h = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:4], "big")
    return (h + 10007 * step + 100000 * epoch) % (2**31)


def step_subset_seed(seed: int, epoch: int) -> int:
    """``seed + 100000·e + 104729``: the ``random.Random`` seed of the SubGRPO step subset (§4.4)."""
    return seed + 100000 * epoch + 104729


def k_repeat_seed(seed: int, epoch: int, iters_per_epoch: int, iteration: int) -> int:
    """``seed + e·iters_per_epoch + i``: the K-repeat sampler's generator seed (§4.3)."""
    return seed + epoch * iters_per_epoch + iteration


def epoch_shuffle_seed(seed: int, epoch: int) -> int:
    """``seed + epoch``: the per-pass prompt permutation of stage 1 (as torch's ``DistributedSampler``)."""
    return seed + epoch


@contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded to ``seed`` and restore the previous state afterwards (tiny-weight
    writers: their random weights are a deterministic function of the code, whatever ran before)."""
    import torch

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)
