"""The toy world is exact: teacher velocity vs Monte Carlo, tilted target vs numerical integration."""

from __future__ import annotations

import math

import pytest
import torch

from rtdmd_bench.toy.rewards import BumpReward, LinearReward
from rtdmd_bench.toy.world import WorldConfig, make_mixture, teacher_velocity


@pytest.fixture(scope="module")
def mix():
    return make_mixture(WorldConfig())


@pytest.mark.parametrize("sigma", [0.2, 0.5, 0.9])
def test_teacher_velocity_matches_monte_carlo(mix, sigma):
    """Self-normalised importance sampling of E[ε − x0 | x_σ = x] with x0 ~ p (no posterior formula used)."""
    g = torch.Generator().manual_seed(0)
    x0 = mix.sample(400_000, g).double()  # [M, 2]
    queries = mix.marginal(sigma).sample(5, g).double()  # typical points of p_σ (atypical ones have tiny ESS)
    v = teacher_velocity(mix, queries, sigma)
    for q, vq in zip(queries, v):
        eps = (q - (1 - sigma) * x0) / sigma  # the noise that maps x0_i to q
        logw = -0.5 * (eps**2).sum(-1)  # N(q; (1−σ)x0, σ²I) up to a constant
        w = torch.softmax(logw, dim=0)
        mc = (w[:, None] * (eps - x0)).sum(0)
        ess = 1.0 / float((w**2).sum())
        assert ess > 200, ess
        sd = (w[:, None] * (eps - x0 - mc) ** 2).sum(0).sqrt()  # posterior std of ε − x0
        tol = 5 * sd / math.sqrt(ess) + 1e-3  # 5 Monte Carlo standard errors
        assert bool(((vq - mc).abs() <= tol).all()), (sigma, q, vq, mc, tol)


def test_teacher_velocity_edge_cases(mix):
    x = torch.randn(16, 2, dtype=torch.float64)
    assert torch.allclose(teacher_velocity(mix, x, 0.0), -x)  # E[ε − x0 | x0] = −x0
    # at σ = 1, x = ε exactly, so E[ε − x0 | x] = x − E[x0]
    mean = (mix.weights[:, None] * mix.means).sum(0)
    assert torch.allclose(teacher_velocity(mix, x, 1.0), x - mean)
    # per-sample sigmas equal the scalar version row by row
    s = torch.rand(16, dtype=torch.float64)
    v = teacher_velocity(mix, x, s)
    assert torch.allclose(v[3], teacher_velocity(mix, x[3:4], float(s[3]))[0])


def _grid(lo=-7.0, hi=7.0, n=701):
    ax = torch.linspace(lo, hi, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(ax, ax, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1), float(ax[1] - ax[0]) ** 2


@pytest.mark.parametrize("reward,beta", [(BumpReward((0.0, 2.0), 1.5), 1.0), (BumpReward((-1.0, 1.0), 1.0), 3.0),
                                         (LinearReward((0.6, 0.8)), 1.5), (BumpReward((0.0, 2.0), 1.5), -0.5)])
def test_tilted_target_matches_numerical_integration(mix, reward, beta):
    pts, da = _grid()
    r = reward(pts)
    comp = torch.exp(mix.component_log_prob(pts) + beta * r[:, None])  # [n, K] w_k N_k e^{βr}
    mass = comp.sum(0) * da
    tilted = reward.tilt(mix, beta)
    assert torch.allclose(tilted.weights, mass / mass.sum(), atol=1e-6)
    # per-component means and the density itself
    means = (comp[..., None] * pts[:, None, :]).sum(0) * da / mass[:, None]
    assert torch.allclose(tilted.means, means, atol=1e-5)
    dens = comp.sum(1) / (mass.sum())
    assert torch.allclose(torch.exp(tilted.log_prob(pts)), dens, atol=1e-6)
    assert math.isclose(reward.expected(tilted), float((dens * r).sum() * da), abs_tol=1e-4)


def test_tilt_at_zero_is_identity_and_rejects_bad_beta(mix):
    reward = BumpReward((0.0, 2.0), 1.5)
    t = reward.tilt(mix, 0.0)
    assert torch.allclose(t.weights, mix.weights) and torch.allclose(t.means, mix.means)
    with pytest.raises(ValueError):
        reward.tilt(mix, 2 * reward.min_beta(mix))


def test_exact_samples_follow_the_mixture(mix):
    x = mix.sample(50_000, torch.Generator().manual_seed(1))
    mean = (mix.weights[:, None] * mix.means).sum(0)
    assert torch.allclose(x.double().mean(0), mean, atol=0.03)
