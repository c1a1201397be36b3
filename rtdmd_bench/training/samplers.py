"""Prompt samplers and the per-epoch randomness that every rank must agree on without a collective.

* ``PromptSampler``      stage 1: a reshuffled pass over the prompts, the global batch split over ranks.
* ``KRepeatSampler``     stage 2: K images per prompt, identical permutation on every rank (§4.3, invariant 16).
* ``select_train_steps`` SubGRPO step subset S of an epoch (§4.4, invariant 17).
* ``shared_step_noise``  per-prompt shared CPS noise for stochastic steps not in S (§2.4, invariant 18).

All are pure functions of ``(seed, epoch/step, iteration)``, so resume needs no sampler state beyond the counters.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rtdmd_bench.seeds import epoch_shuffle_seed, k_repeat_seed, shared_noise_seed, step_subset_seed


class SamplerConfigError(ValueError):
    """Batch/K/world-size combination the sampler cannot serve."""


@dataclass(frozen=True)
class PromptSampler:
    """Stage-1 sampler: global batch ``b`` of step ``i`` is positions ``[i·B, (i+1)·B)`` of an endless stream
    of seeded permutations of the dataset (a fresh permutation each pass); rank r takes its contiguous slice.

    Args:
        n_prompts: dataset size. batch_size: per-rank batch. world, rank: process grid. seed: run seed.
    """

    n_prompts: int
    batch_size: int
    world: int = 1
    rank: int = 0
    seed: int = 0

    def _perm(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(epoch_shuffle_seed(self.seed, epoch))
        return torch.randperm(self.n_prompts, generator=g).tolist()

    def global_indices(self, step: int) -> list[int]:
        """Dataset indices of the whole global batch of ``step`` (length ``world·batch_size``)."""
        gb = self.batch_size * self.world
        out, cache = [], {}
        for pos in range(step * gb, (step + 1) * gb):
            epoch, j = divmod(pos, self.n_prompts)
            if epoch not in cache:
                cache[epoch] = self._perm(epoch)
            out.append(cache[epoch][j])
        return out

    def indices(self, step: int) -> tuple[list[int], list[int]]:
        """``(dataset indices, global sample keys)`` of this rank's slice of ``step``."""
        lo = self.rank * self.batch_size
        keys = list(range(lo, lo + self.batch_size))
        return self.global_indices(step)[lo:lo + self.batch_size], keys


@dataclass(frozen=True)
class KRepeatSampler:
    """Stage-2 K-repeat sampler (reference ``DistributedKRepeatSampler``, §4.3).

    Iteration ``i`` of epoch ``e`` seeds a CPU generator with ``seed + e·iters_per_epoch + i``, draws
    ``m = world·batch_size/K`` distinct prompts from ``randperm(n_prompts)``, repeats each K times, shuffles the
    ``world·batch_size`` items with the same generator and gives rank r the slice ``[r·bs, (r+1)·bs)``.

    Args:
        n_prompts: dataset size. batch_size: per-rank ``sample_batch_size``. k: images per prompt.
        world, rank: process grid. seed: ``train.seed``. iters_per_epoch: ``num_batches_per_epoch``.

    Raises:
        SamplerConfigError: K does not divide ``world·batch_size`` or there are fewer than m prompts.
    """

    n_prompts: int
    batch_size: int
    k: int
    world: int = 1
    rank: int = 0
    seed: int = 0
    iters_per_epoch: int = 1

    def __post_init__(self) -> None:
        check_k_repeat(self.batch_size, self.k, self.world, self.n_prompts)

    def global_indices(self, epoch: int, iteration: int) -> list[int]:
        """Dataset indices of every rank's batch, concatenated in rank order."""
        g = torch.Generator().manual_seed(k_repeat_seed(self.seed, epoch, self.iters_per_epoch, iteration))
        total = self.world * self.batch_size
        m = total // self.k
        prompts = torch.randperm(self.n_prompts, generator=g)[:m]
        repeated = prompts.repeat_interleave(self.k)
        return repeated[torch.randperm(total, generator=g)].tolist()

    def indices(self, epoch: int, iteration: int) -> tuple[list[int], list[int]]:
        """``(dataset indices, global sample keys)`` of this rank for iteration ``iteration`` of ``epoch``."""
        lo = self.rank * self.batch_size
        keys = [iteration * self.world * self.batch_size + lo + j for j in range(self.batch_size)]
        return self.global_indices(epoch, iteration)[lo:lo + self.batch_size], keys


def check_k_repeat(batch_size: int, k: int, world: int, n_prompts: int | None = None) -> None:
    """Raise ``SamplerConfigError`` unless K divides the global sampling batch (and enough prompts exist)."""
    total = batch_size * world
    if k < 1 or total % k != 0:
        raise SamplerConfigError(
            f"K={k} images per prompt must divide the global sampling batch sample_batch_size×world = "
            f"{batch_size}×{world} = {total}; change sampling.k or sampling.batch_size")
    if n_prompts is not None and total // k > n_prompts:
        raise SamplerConfigError(f"need {total // k} distinct prompts per iteration but the dataset has {n_prompts}")


def select_train_steps(seed: int, epoch: int, range_start: int, range_end: int, num_train_steps: int) -> list[int]:
    """SubGRPO step subset S (§4.4): ``sorted(Random(seed + 100000·e + 104729).sample(range, n))``.

    Pure function of its arguments (own ``random.Random``; the global RNG is untouched), so every rank agrees.

    Returns:
        ``num_train_steps`` distinct sorted step indices in ``[range_start, range_end]``.
    """
    pool = list(range(range_start, range_end + 1))
    if not 0 < num_train_steps <= len(pool):
        raise ValueError(f"num_train_steps={num_train_steps} must be in 1..{len(pool)} for [{range_start}, {range_end}]")
    return sorted(random.Random(step_subset_seed(seed, epoch)).sample(pool, num_train_steps))


def shared_step_noise(prompts: Sequence[str], step: int, epoch: int, shape: Sequence[int],
                      selected: Sequence[int]) -> torch.Tensor | None:
    """CPS noise shared by all samples of a prompt for a stochastic step not in S (§2.4).

    Returns:
        ``[len(prompts), *shape]`` fp32 CPU noise, identical for identical ``(prompt, step, epoch)`` on any rank
        and in any call; ``None`` for a selected step (those use fresh per-sample noise).
    """
    if step in selected:
        return None
    # one draw per distinct prompt (K repeats share it), not one generator per sample
    unique = {p: torch.randn(tuple(shape), generator=torch.Generator().manual_seed(shared_noise_seed(p, step, epoch)))
              for p in dict.fromkeys(prompts)}
    return torch.stack([unique[p] for p in prompts])
