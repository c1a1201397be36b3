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


def _tilt_by_monte_carlo(mix, reward, beta, n=400_000, seed=0):
    """Weights, means and covariances of p·e^{βr} per component from importance-weighted exact component samples."""
    g = torch.Generator().manual_seed(seed)
    weights, means, covs = [], [], []
    for k in range(len(mix.weights)):
        chol = torch.linalg.cholesky(mix.covs[k])
        x = mix.means[k] + torch.randn(n, mix.dim, generator=g, dtype=torch.float64) @ chol.T
        w = torch.exp(beta * reward(x))
        weights.append(mix.weights[k] * w.mean())
        m = (w[:, None] * x).sum(0) / w.sum()
        c = x - m
        means.append(m)
        covs.append((w[:, None, None] * c[:, :, None] * c[:, None, :]).sum(0) / w.sum())
    weights = torch.stack(weights)
    return weights / weights.sum(), torch.stack(means), torch.stack(covs)


@pytest.mark.parametrize("reward,beta", [(BumpReward((0.0, 2.0), 1.5), 1.0),
                                         (BumpReward((0.0, 2.0), 1.5, coords="all", scale=2.0), 0.7),
                                         (LinearReward((0.0, 1.0), scale=4.0), 0.5),
                                         (LinearReward((0.3, 0.0, 0.5, 0.0, 0.0, -0.4)), 1.0)])
def test_d_dimensional_tilt_matches_monte_carlo(reward, beta):
    """d = 6 (ring in the first two coordinates, Gaussian detail elsewhere): closed-form tilt vs Monte Carlo."""
    mix = make_mixture(WorldConfig(n_modes=4, dim=6))
    tilted = reward.tilt(mix, beta)
    w, m, c = _tilt_by_monte_carlo(mix, reward, beta)
    torch.testing.assert_close(tilted.weights, w, atol=5e-3, rtol=0)
    torch.testing.assert_close(tilted.means, m, atol=5e-3, rtol=0)
    torch.testing.assert_close(tilted.covs, c, atol=2e-3, rtol=0)
    xs = tilted.sample(200_000, torch.Generator().manual_seed(1)).double()
    assert reward.expected(tilted) == pytest.approx(float(reward(xs).mean()), abs=0.02)


def test_d_dimensional_world_and_teacher():
    """The ring stays in the plane, the detail coordinates are N(0, std²); the per-coordinate teacher path equals
    the general one; the plane marginal is the 2-D world."""
    import rtdmd_bench.toy.world as world_mod

    mix = make_mixture(WorldConfig(dim=5))
    assert mix.dim == 5 and mix.diagonal()
    assert torch.equal(mix.means[:, 2:], torch.zeros(8, 3))
    flat = make_mixture(WorldConfig())
    assert torch.equal(mix.project(2).means, flat.means) and torch.equal(mix.project(2).covs, flat.covs)
    x = torch.randn(9, 5, dtype=torch.float64)
    s = torch.rand(9, dtype=torch.float64)
    full = world_mod.Mixture(mix.weights, mix.means, mix.covs + 1e-12 * torch.ones(5, 5, dtype=torch.float64))  # forces the general path
    assert not full.diagonal()
    torch.testing.assert_close(teacher_velocity(mix, x, s), teacher_velocity(full, x, s))
    with pytest.raises(ValueError, match="coordinates"):
        LinearReward((1.0, 0.0, 0.0)).tilt(make_mixture(WorldConfig()), 1.0)
