"""Batched reward scoring vs a per-image loop on the same tiny models (pytest-benchmark).

Run: ``.venv/bin/pytest benchmarks/test_rewards_bench.py --benchmark-only``. The final test prints
``per-image / batched`` time ratios; batching must win (ratio > 1).
"""

from __future__ import annotations

import time

import pytest
import torch

BATCH = 8
NAMES = ["clipscore", "pickscore", "hpsv2", "imagereward"]
_RATIOS: dict[str, float] = {}


@pytest.fixture(scope="module")
def rewards(tmp_path_factory):
    from rtdmd_bench.rewards import build
    from rtdmd_bench.rewards.tiny import write_tiny_rewards

    torch.manual_seed(0)
    root = write_tiny_rewards(tmp_path_factory.mktemp("bench-weights"))
    return {n: build(n, weights=root) for n in NAMES}


def _inputs():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(BATCH, 3, 128, 128, generator=g)
    prompts = [f"a photo of the cat number {i % 4}" for i in range(BATCH)]  # repeated prompts, as in suites
    return images, prompts


def _grad_scores(reward, images, prompts):
    x = images.clone().requires_grad_(True)
    reward(x, prompts).scores.sum().backward()
    return x.grad


@pytest.mark.parametrize("name", NAMES)
def test_batched_eval(benchmark, rewards, name):
    images, prompts = _inputs()
    with torch.no_grad():
        benchmark(lambda: rewards[name](images, prompts))


@pytest.mark.parametrize("name", NAMES)
def test_per_image_loop_eval(benchmark, rewards, name):
    images, prompts = _inputs()
    with torch.no_grad():
        benchmark(lambda: [rewards[name](images[i:i + 1], prompts[i:i + 1]) for i in range(BATCH)])


@pytest.mark.parametrize("name", NAMES)
def test_batched_grad_path(benchmark, rewards, name):
    images, prompts = _inputs()
    benchmark(lambda: _grad_scores(rewards[name], images, prompts))


@pytest.mark.parametrize("name", NAMES)
def test_batching_wins(rewards, name):
    """Median of 3 timings of each mode; prints and asserts ratio = loop / batched > 1 (gradient path,
    where batching is pure tensor work; the eval path also pays the per-image PIL resize in both modes)."""
    images, prompts = _inputs()

    def timed(fn):
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        return sorted(runs)[1]

    reward = rewards[name]
    _grad_scores(reward, images, prompts)  # warm-up (text cache, allocator)
    batched = timed(lambda: _grad_scores(reward, images, prompts))
    loop = timed(lambda: [_grad_scores(reward, images[i:i + 1], prompts[i:i + 1]) for i in range(BATCH)])
    with torch.no_grad():
        eval_batched = timed(lambda: reward(images, prompts))
        eval_loop = timed(lambda: [reward(images[i:i + 1], prompts[i:i + 1]) for i in range(BATCH)])
    _RATIOS[name] = loop / batched
    print(f"\n{name}: grad path loop/batched = {loop / batched:.2f}x ({loop * 1e3:.0f} ms vs {batched * 1e3:.0f} ms); "
          f"eval path = {eval_loop / eval_batched:.2f}x ({eval_loop * 1e3:.0f} ms vs {eval_batched * 1e3:.0f} ms)")
    assert loop / batched > 1.0
