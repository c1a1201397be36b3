"""K-repeat sampler, step selection, shared noise, SampleRNG (ALGORITHM.md invariants 16-18)."""

import random
from collections import Counter

import pytest
import torch

from rtdmd_bench.seeds import shared_noise_seed
from rtdmd_bench.training.backbone import SampleRNG
from rtdmd_bench.training.samplers import (
    KRepeatSampler,
    PromptSampler,
    SamplerConfigError,
    select_train_steps,
    shared_step_noise,
)


@pytest.mark.parametrize("world,bs,k", [(1, 8, 4), (2, 6, 4), (4, 3, 6)])
def test_k_repeat_union_over_ranks(world, bs, k):
    samplers = [KRepeatSampler(50, bs, k, world=world, rank=r, seed=7, iters_per_epoch=4) for r in range(world)]
    for epoch, it in [(0, 0), (3, 2)]:
        union = [i for s in samplers for i in s.indices(epoch, it)[0]]
        counts = Counter(union)
        assert len(counts) == world * bs // k and set(counts.values()) == {k}
        assert all(s.global_indices(epoch, it) == samplers[0].global_indices(epoch, it) for s in samplers)
    keys = [key for s in samplers for key in s.indices(1, 1)[1]]
    assert keys == list(range(world * bs, 2 * world * bs))


def test_k_repeat_by_hand_seed():
    s = KRepeatSampler(10, 4, 2, seed=3, iters_per_epoch=16)
    g = torch.Generator().manual_seed(3 + 2 * 16 + 5)
    prompts = torch.randperm(10, generator=g)[:2].repeat_interleave(2)
    assert s.indices(2, 5)[0] == prompts[torch.randperm(4, generator=g)].tolist()


def test_k_must_divide_batch():
    with pytest.raises(SamplerConfigError, match="must divide"):
        KRepeatSampler(50, 3, 4, world=1)


def test_prompt_sampler_ranks_tile_the_global_batch():
    one = PromptSampler(7, 4, world=1, seed=1)
    two = [PromptSampler(7, 2, world=2, rank=r, seed=1) for r in range(2)]
    for step in range(5):
        assert one.indices(step)[0] == two[0].indices(step)[0] + two[1].indices(step)[0]
    seen = [i for step in range(7) for i in one.global_indices(step)]  # 28 = 4 full passes
    assert Counter(seen) == Counter({i: 4 for i in range(7)})


def test_step_selection():
    random.seed(123)
    state = random.getstate()
    s = select_train_steps(42, 5, 0, 2, 2)
    assert random.getstate() == state
    assert s == sorted(random.Random(42 + 500000 + 104729).sample([0, 1, 2], 2))
    assert len(set(s)) == 2 and s == sorted(s) and all(0 <= i <= 2 for i in s)
    assert s == select_train_steps(42, 5, 0, 2, 2)
    assert {tuple(select_train_steps(42, e, 0, 2, 2)) for e in range(30)} == {(0, 1), (0, 2), (1, 2)}


def test_shared_noise():
    prompts = ["a cat", "a dog", "a cat"]
    z = shared_step_noise(prompts, 1, 3, (2, 3), selected=[0, 2])
    assert z.shape == (3, 2, 3)
    assert torch.equal(z[0], z[2]) and not torch.equal(z[0], z[1])
    assert torch.equal(z, shared_step_noise(prompts, 1, 3, (2, 3), selected=[0, 2]))
    assert not torch.equal(z, shared_step_noise(prompts, 1, 4, (2, 3), selected=[0, 2]))
    assert shared_step_noise(prompts, 2, 3, (2, 3), selected=[0, 2]) is None
    seed = shared_noise_seed("a cat", 1, 3)
    assert torch.equal(z[0], torch.randn(2, 3, generator=torch.Generator().manual_seed(seed)))


def test_sample_rng_is_independent_of_batch_split():
    rng = SampleRNG(5)
    whole = rng.randn(3, "x", [0, 1, 2, 3], (2,), "cpu")
    parts = torch.cat([rng.randn(3, "x", [0, 1], (2,), "cpu"), rng.randn(3, "x", [2, 3], (2,), "cpu")])
    assert torch.equal(whole, parts)
    assert not torch.equal(whole, rng.randn(4, "x", [0, 1, 2, 3], (2,), "cpu"))
    assert not torch.equal(whole, rng.randn(3, "y", [0, 1, 2, 3], (2,), "cpu"))


def test_batched_sample_rng_is_world_size_independent():
    """Block layout: rank slices of a global batch equal the single-process rows, for any split and world."""
    rng = SampleRNG(5, block=8)
    whole = rng.randn(3, "x", list(range(8)), (2,), "cpu")
    for world in (2, 4):
        bs = 8 // world
        parts = torch.cat([rng.randn(3, "x", list(range(r * bs, (r + 1) * bs)), (2,), "cpu") for r in range(world)])
        assert torch.equal(whole, parts)
    u = rng.rand(3, "t", list(range(8)))
    assert torch.equal(u[2:5], rng.rand(3, "t", [2, 3, 4]))
    # keys of a second iteration live in the next block; a mixed request stacks rows of both
    both = rng.randn(3, "x", [7, 8], (2,), "cpu")
    assert torch.equal(both[0], whole[7]) and torch.equal(both[1], rng.randn(3, "x", [8], (2,), "cpu")[0])
    assert not torch.equal(whole, rng.randn(4, "x", list(range(8)), (2,), "cpu"))
    assert not torch.equal(whole, SampleRNG(5).randn(3, "x", list(range(8)), (2,), "cpu"))
