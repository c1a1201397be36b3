"""Metrics on exact samples sit at their floor, and move off it for the wrong distribution."""

from __future__ import annotations

import pytest
import torch

from rtdmd_bench.toy import metrics
from rtdmd_bench.toy.rewards import BumpReward
from rtdmd_bench.toy.world import WorldConfig, make_mixture

N = 2000


@pytest.fixture(scope="module")
def setup():
    mix = make_mixture(WorldConfig())
    reward = BumpReward((0.0, 2.0), 1.5)
    return mix, reward, reward.tilt(mix, 1.0)


def test_distances_at_floor_on_exact_samples(setup):
    mix, _, tilted = setup
    g = torch.Generator().manual_seed(3)
    for stat in (metrics.mmd, metrics.energy):
        floor = metrics.noise_floor(lambda n, gen: mix.sample(n, gen), stat, N)
        same = stat(mix.sample(N, g), mix.sample(N, g))
        other = stat(mix.sample(N, g), tilted.sample(N, g))
        assert floor > 0
        assert same < 2 * floor, (stat, same, floor)
        assert other > 5 * floor, (stat, other, floor)


def test_mode_metrics_on_exact_samples(setup):
    mix, reward, tilted = setup
    x = tilted.sample(4000, torch.Generator().manual_seed(4))
    assert metrics.mode_tv(x, tilted) < 0.03
    assert metrics.mode_tv(x, mix) > 0.3
    assert abs(metrics.variance_ratio(x, tilted) - 1) < 0.1
    assert abs(metrics.mean_reward(x, reward) - reward.expected(tilted)) < 0.05
    assert abs(metrics.effective_beta(x, mix, reward) - 1.0) < 0.2
    assert abs(metrics.effective_beta(mix.sample(4000, torch.Generator().manual_seed(5)), mix, reward)) < 0.2


def test_variance_ratio_detects_collapse(setup):
    mix, _, _ = setup
    x = mix.sample(4000, torch.Generator().manual_seed(6))
    idx = metrics.nearest_mode(mix.means, x)
    shrunk = mix.means[idx].float() + 0.3 * (x - mix.means[idx].float())
    assert metrics.variance_ratio(shrunk, mix) == pytest.approx(0.09, abs=0.02)
