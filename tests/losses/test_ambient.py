"""AC-DMD pieces: renoise (3.1), ambient target (3.2-3.3), fake loss weight, consistency (3.4), timesteps.

Invariants 9, 10, 11, 14 and 19 of ALGORITHM.md §9.
"""

import math

import pytest
import torch

from rtdmd_bench.losses.ambient import (
    ambient_target,
    consistency_loss,
    consistency_timesteps,
    fake_score_loss,
    renoise,
    renoise_timesteps,
)


def test_renoise_by_hand():
    x_s, eps = torch.ones(1, 1), torch.ones(1, 1)
    # s=0.5, t=0.8: a = 0.2/0.5 = 0.4, sigma_ts = sqrt(0.64 - 0.16*0.25) = sqrt(0.6)
    x_t, sigma_ts = renoise(x_s, 0.5, 0.8, eps)
    assert x_t.item() == pytest.approx(0.4 + math.sqrt(0.6), rel=1e-6)
    assert float(sigma_ts) == pytest.approx(math.sqrt(0.6), rel=1e-6)


def test_renoise_from_clean_is_forward_interpolation():
    x0, eps = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    t = torch.tensor([0.1, 0.3, 0.7, 0.98])
    x_t, _ = renoise(x0, torch.zeros(4), t, eps)
    torch.testing.assert_close(x_t, (1 - t.view(-1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1) * eps)


def test_renoise_total_noise_variance_is_t_squared():
    s = torch.tensor([0.0, 0.5, 0.75, 0.9])
    t = torch.tensor([0.3, 0.6, 0.8, 0.95])
    a = (1 - t) / (1 - s)
    _, sigma_ts = renoise(torch.zeros(4, 1), s, t, torch.zeros(4, 1))
    # x_s = (1-s)x0 + s e1 -> x_t = a(1-s) x0 + (a s e1 + sigma_ts e'): x0 coef (1-t), noise var t^2
    torch.testing.assert_close(a * (1 - s), 1 - t)
    torch.testing.assert_close((a * s) ** 2 + sigma_ts.view(-1) ** 2, t**2)


def test_ambient_target_at_clean_level():
    x0, eps = torch.randn(2, 5), torch.randn(2, 5)
    t = torch.tensor([0.4, 0.9])
    y, lam = ambient_target(x0, eps, torch.zeros(2), t, scale_out=False)
    torch.testing.assert_close(y, eps - x0)
    assert torch.equal(lam, torch.ones_like(lam))
    y2, lam2 = ambient_target(x0, eps, torch.zeros(2), t, scale_out=True)
    torch.testing.assert_close(y2, t.view(-1, 1) * (eps - x0))
    torch.testing.assert_close(lam2.view(-1), t)


def test_ambient_target_by_hand_and_scale_out_relation():
    x_s, eps = torch.ones(1, 1), torch.ones(1, 1)
    # s=0.5, t=0.8: A = -2, Bc = 0.8 + 0.2*0.25/0.25 = 1.0, sigma_ts = sqrt(0.6)
    y, _ = ambient_target(x_s, eps, 0.5, 0.8, scale_out=False)
    assert y.item() == pytest.approx(-2 + 1 / math.sqrt(0.6), rel=1e-6)
    y2, lam = ambient_target(x_s, eps, 0.5, 0.8, scale_out=True)
    assert y2.item() == pytest.approx(math.sqrt(0.6) * y.item(), rel=1e-6)
    assert float(lam) == pytest.approx(math.sqrt(0.6), rel=1e-6)


def test_ambient_target_unbiased_for_non_gaussian_data():
    """E[y | x_t] = E[eps_tot - x0 | x_t] for a two-point x0 (Monte Carlo, binned on x_t)."""
    g = torch.Generator().manual_seed(0)
    n, s, t = 400_000, 0.5, 0.8
    x0 = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    e1, e2 = torch.randn(n, generator=g).double(), torch.randn(n, generator=g).double()
    x_s = (1 - s) * x0 + s * e1
    x_t, _ = renoise(x_s, s, t, e2)
    y, _ = ambient_target(x_s, e2, s, t, scale_out=False)
    v_true = (x_t.double() - (1 - t) * x0) / t - x0  # eps_tot - x0 with x_t = (1-t)x0 + t eps_tot
    bins = torch.bucketize(x_t.double(), torch.linspace(-1.5, 1.5, 13))
    for b in range(1, 13):
        m = bins == b
        if m.sum() > 5000:
            assert abs(y.double()[m].mean() - v_true[m].mean()) < 0.05


@pytest.mark.parametrize("lam", [0.05, 0.2, 1 / math.sqrt(10), 0.5, 0.9])
def test_effective_fake_weight(lam):
    v, y = torch.randn(3, 4), torch.randn(3, 4)
    loss = fake_score_loss(v, lam * y, torch.tensor(lam))
    expected = (min(1.0, 10 * lam * lam) * (v - y) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_fake_weight_clamps_at_zero_scale():
    v, y = torch.zeros(1, 2), torch.tensor([[1.0, 3.0]])
    # lambda = 0 -> 1/max(0, 1e-12) = 1e12 -> clamped to 10; loss = 10 * mean(y^2) = 10 * 5
    assert fake_score_loss(v, y, torch.tensor(0.0)).item() == pytest.approx(50.0)


def test_consistency_by_hand():
    ha = torch.zeros(1, 2)
    h1, h2 = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])
    assert consistency_loss(ha, h1, h2).item() == pytest.approx((3 - 2) / 2)
    assert consistency_loss(ha, h1, h2, two_sample=False).item() == pytest.approx((1 + 4) / 2)
    assert consistency_loss(ha, h1, h1.clone()).item() == pytest.approx(2.5)  # eta=0: mean((h'-h)^2)
    assert consistency_loss(ha, torch.tensor([[float("nan"), 0.0]]), h2).item() == 0.0


def test_consistency_zero_mean_for_martingale_predictor():
    g = torch.Generator().manual_seed(1)
    ha = torch.randn(20_000, 8, generator=g)
    h1 = ha + torch.randn(20_000, 8, generator=g)
    h2 = ha + torch.randn(20_000, 8, generator=g)
    assert abs(consistency_loss(ha, h1, h2).item()) < 0.02  # std of the mean ~ 1/sqrt(160000)


def test_renoise_timesteps_by_hand_and_invariant():
    s = torch.tensor([0.5, 0.9581, 0.995, 0.0])
    u = torch.tensor([0.5, 0.9, 0.3, 0.0])
    t_r = renoise_timesteps(s, u)
    torch.testing.assert_close(t_r, torch.tensor([755.0, 980.0, 980.0, 20.0]))
    g = torch.Generator().manual_seed(0)
    s = torch.tensor([0.0, 0.5, 0.75, 0.9, 0.9581]).repeat(400)
    t_r = renoise_timesteps(s, torch.rand(s.shape, generator=g))
    assert t_r.min() >= 20 and t_r.max() <= 980
    ok = 1000 * s + 10 <= 980
    assert bool((t_r[ok] >= 1000 * s[ok] + 10 - 1e-3).all())


def test_consistency_timesteps():
    t_r = torch.tensor([500.0, 500.0, 100.0])
    out = consistency_timesteps(t_r, torch.tensor([0.0, 0.9999, 0.9999]))
    torch.testing.assert_close(out, torch.tensor([499.0, 300.0, 0.0]))
