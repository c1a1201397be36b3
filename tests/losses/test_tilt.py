"""losses.tilt: the calibrated mode's importance weights and the β-meter, against hand-computed numbers."""

import math

import pytest
import torch

from rtdmd_bench.losses.ambient import fake_score_loss
from rtdmd_bench.losses.policy import group_advantages, leave_one_out_advantages
from rtdmd_bench.losses.tilt import (
    advantage_scale,
    dm_kl_coefficient,
    effective_beta_estimate,
    policy_gradient_coefficient,
    tilt_effective_sample_size,
    tilt_weights,
    update_log_normalizer,
)


def test_tilt_weights_by_hand():
    r = torch.tensor([0.0, math.log(2.0), math.log(4.0)])
    # β = 1: e^{-R} = 1, 1/2, 1/4; self-normalised to mean 1: (1, .5, .25)·3/1.75
    torch.testing.assert_close(tilt_weights(r, 1.0), torch.tensor([12 / 7, 6 / 7, 3 / 7]))
    # with a normaliser log Ẑ = log(1/2): e^{-R}/Ẑ = (2, 1, .5)
    torch.testing.assert_close(tilt_weights(r, 1.0, math.log(0.5)), torch.tensor([2.0, 1.0, 0.5]))
    # β = 2 squares the ratios; β = 0 is all ones
    torch.testing.assert_close(tilt_weights(r, 2.0, 0.0), torch.tensor([1.0, 0.25, 1 / 16]))
    assert torch.equal(tilt_weights(r, 0.0), torch.ones(3))
    # huge rewards do not overflow (log-space)
    assert torch.isfinite(tilt_weights(torch.tensor([-800.0, 0.0]), 1.0)).all()


def test_effective_sample_size_by_hand():
    assert float(tilt_effective_sample_size(torch.ones(8))) == pytest.approx(8.0)
    assert float(tilt_effective_sample_size(torch.tensor([3.0, 1.0]))) == pytest.approx(16 / 10)


def test_running_normaliser_by_hand():
    r = torch.tensor([0.0, math.log(2.0)])  # e^{-R}: 1, 1/2 -> batch mean 3/4
    z = update_log_normalizer(None, r, 1.0, 0.9)
    assert z == pytest.approx(math.log(0.75))
    z = update_log_normalizer(z, torch.tensor([math.log(4.0)]), 1.0, 0.9)  # .9·.75 + .1·.25
    assert z == pytest.approx(math.log(0.9 * 0.75 + 0.1 * 0.25))


def test_weighted_fake_loss_minimiser_is_the_tilted_mean():
    """Weighted squared loss on samples x with weights e^{-βx}: the minimiser is the mean under q·e^{-βx}."""
    x = torch.tensor([[0.0], [1.0], [2.0]])
    w = tilt_weights(x[:, 0], 1.0)
    v = torch.zeros(1, 1, requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        fake_score_loss(v.expand(3, 1), x, 1.0, (0.0, 1e9), sample_weight=w).backward()
        opt.step()
    p = torch.tensor([1.0, math.exp(-1), math.exp(-2)])
    assert float(v.detach()) == pytest.approx(float((p * x[:, 0]).sum() / p.sum()), abs=1e-5)
    # weights of 1 give the plain loss
    y = torch.randn(3, 2)
    assert float(fake_score_loss(y, x.expand(3, 2), 1.0, sample_weight=torch.ones(3))) == \
        pytest.approx(float(fake_score_loss(y, x.expand(3, 2), 1.0)))


def test_advantage_scale_of_both_advantage_modes():
    r = torch.tensor([1.0, 2.0, 3.0, 5.0])
    g = torch.tensor([0, 0, 1, 1])
    # standardised (eq. 4.1, one reward): A = (R − group mean)/pooled within-group std; deviations ±.5, ±1
    sigma_w = math.sqrt((0.25 + 0.25 + 1 + 1) / 4)
    a = group_advantages({"r": r}, {"r": 1.0}, g)
    assert float(advantage_scale(a, r, g)) == pytest.approx(1 / sigma_w, rel=1e-3)
    # raw leave-one-out: β·K/(K−1)
    a = leave_one_out_advantages({"r": r}, {"r": 1.0}, g, 0.7)
    assert float(advantage_scale(a, r, g)) == pytest.approx(0.7 * 2, rel=1e-6)
    assert float(advantage_scale(a, torch.tensor([1.0, 1.0, 2.0, 2.0]), g)) == 0.0


def test_policy_gradient_coefficient_by_hand():
    # s=2, K=4, |S|=2 of 3 steps, f = (0.3, 0.2, 0.1): 2·3/4·2/3·0.2 = 0.2
    assert policy_gradient_coefficient(2.0, 4, 2, [0.3, 0.2, 0.1], False) == pytest.approx(0.2)
    # subset correction (N−1)/|S| removes the 2/3
    assert policy_gradient_coefficient(2.0, 4, 2, [0.3, 0.2, 0.1], True) == pytest.approx(0.3)
    assert policy_gradient_coefficient(2.0, 4, 0, [0.3], True) == 0.0


def test_dm_kl_coefficient_by_hand():
    t = torch.tensor([0.5, 0.25])  # κ = 1, 9
    u = torch.tensor([1.0, 2.0])
    n = torch.tensor([0.5, 4.0])
    # Σ u/(D n) / Σ κ u = (1/(2·.5) + 2/(2·4)) / (1 + 18) = 1.25/19
    assert float(dm_kl_coefficient(u, n, t, 2)) == pytest.approx(1.25 / 19)
    # exact-KL weighting: ω = D·κ, no normaliser -> exactly 1
    omega = 2 * (1 - t) ** 2 / t**2
    assert float(dm_kl_coefficient(u, None, t, 2, omega)) == pytest.approx(1.0)
    assert float(dm_kl_coefficient(torch.zeros(2), n, t, 2)) == 0.0


def test_meter_reads_the_beta_of_an_exact_kl_update():
    """A synthetic update with a known β: raw leave-one-out advantages with β, Gaussian log-prob (f = 1), the
    subset correction, BP scale β with an always-active hinge, KL time weights without normaliser."""
    beta, k = 0.7, 4
    g = torch.arange(3).repeat_interleave(k)
    r = torch.randn(3 * k, generator=torch.Generator().manual_seed(0))
    s = float(advantage_scale(leave_one_out_advantages({"r": r}, {"r": 1.0}, g, beta), r, g))
    c_pg = policy_gradient_coefficient(s, k, 2, [1.0, 1.0, 1.0], True)
    t = torch.tensor([0.2, 0.4, 0.6])
    c_dm = float(dm_kl_coefficient(torch.tensor([0.3, 0.1, 0.2]), None, t, 5, 5 * (1 - t) ** 2 / t**2))
    for g_pg, g_bp in [(1.0, 0.0), (0.0, 2.0), (3.0, 0.5)]:
        assert effective_beta_estimate(c_dm, c_pg, beta, g_pg, g_bp) == pytest.approx(beta, rel=1e-5)


def test_effective_beta_estimate_by_hand():
    assert effective_beta_estimate(0.5, c_pg=2.0, g_pg=1.0) == pytest.approx(4.0)
    assert effective_beta_estimate(1.0, c_pg=2.0, c_bp=0.5, g_pg=1.0, g_bp=1.0) == pytest.approx(0.8)
    assert effective_beta_estimate(1.0, tilt_beta=1.5) == 1.5  # calibrated mode: the DM term carries the tilt
    assert effective_beta_estimate(0.25, c_pg=1.0, g_pg=1.0, tilt_beta=1.0) == pytest.approx(5.0)
    assert math.isnan(effective_beta_estimate(0.0, c_pg=1.0, g_pg=1.0))
