"""Flow conventions and the families' few-step schedules (ALGORITHM.md §1, §9 item 8)."""

from __future__ import annotations

import pytest
import torch

from rtdmd_bench import flow
from rtdmd_bench.models import flux1, flux2_klein
from rtdmd_bench.models.family import family

SCHEDULER = {"shift": 3.0}  # what the real SD3 / FLUX scheduler configs contribute to the few-step levels


def few_step_sigmas(fam: str, steps, h: int, w: int, **cfg) -> list[float]:
    return family(fam).cps_sigmas(steps, h, w, {**SCHEDULER, **cfg})


def family_mu(fam: str, h: int, w: int, n: int) -> float:
    return flux1.mu(flux1.seq_len(h, w)) if fam == "flux1" else flux2_klein.mu(flux2_klein.seq_len(h, w), n)

STEPS = [1000, 750, 500, 250]

# ALGORITHM.md §1.3 table: (family, res) -> (mu, sigmas to 4 decimals)
TABLE = {
    ("flux1", 512): (0.630, [1.0, 0.8492, 0.6525, 0.3849]),
    ("flux1", 1024): (1.150, [1.0, 0.9045, 0.7595, 0.5128]),
    ("flux2_klein", 512): (2.031, [1.0, 0.9581, 0.8840, 0.7175]),
    ("flux2_klein", 1024): (2.291, [1.0, 0.9674, 0.9081, 0.7672]),
}


@pytest.mark.parametrize("family", ["sd3", "sd35"])
@pytest.mark.parametrize("res", [512, 1024, 64])
def test_sd3_sigmas_exact_at_any_resolution(family, res):
    assert few_step_sigmas(family, STEPS, res, res) == [1.0, 0.9, 0.75, 0.5]


@pytest.mark.parametrize(("family", "res"), sorted(TABLE))
def test_flux_sigmas_match_table(family, res):
    mu, expected = TABLE[(family, res)]
    assert family_mu(family, res, res, 4) == pytest.approx(mu, abs=5e-4)
    got = few_step_sigmas(family, STEPS, res, res)
    assert [round(s, 4) for s in got] == expected


def test_token_counts():
    assert flux1.seq_len(512, 512) == 1024 and flux1.seq_len(1024, 1024) == 4096
    assert flux2_klein.seq_len(512, 512) == 1024 and flux2_klein.seq_len(1024, 768) == 64 * 48


def test_flux2_mu_large_images_is_linear_in_tokens():
    assert flux2_klein.mu(5000, 4) == pytest.approx(0.00016927 * 5000 + 0.45666666)
    assert flux2_klein.mu(5000, 4) == flux2_klein.mu(5000, 50)


def test_terminal_zero_appended_once_and_not_reshifted():
    s = few_step_sigmas("flux2_klein", STEPS, 512, 512)
    full = flow.with_terminal_zero(s)
    assert full[:-1] == s and full[-1] == 0.0 and full.count(0.0) == 1


def test_linear_shift_and_terminal_stretch():
    lin = few_step_sigmas("flux1", STEPS, 512, 512, time_shift_type="linear")
    mu = flux1.mu(1024)
    assert lin[1] == pytest.approx(mu / (mu + 1 / 0.75 - 1))
    st = few_step_sigmas("flux2_klein", STEPS, 512, 512, shift_terminal=0.5)
    assert st[-1] == pytest.approx(0.5) and st[0] == pytest.approx(1.0)


def test_bad_inputs():
    with pytest.raises(ValueError):
        few_step_sigmas("sd3", [0, 500], 64, 64)
    with pytest.raises(KeyError, match="did you mean|Available"):
        few_step_sigmas("nope", STEPS, 64, 64)


def test_recoveries_are_consistent():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 4, 5, 5, generator=g)
    sigma = torch.tensor([0.2, 0.5, 0.9])
    x = flow.interpolate(x0, eps, sigma)
    v = flow.target_velocity(x0, eps)
    torch.testing.assert_close(flow.x0_from_velocity(x, v, sigma), x0, atol=1e-6, rtol=0)
    torch.testing.assert_close(flow.noise_from_velocity(x, v, sigma), eps, atol=1e-6, rtol=0)
    torch.testing.assert_close(flow.velocity_from_x0(x, x0, sigma), v, atol=1e-5, rtol=0)
    # float sigma broadcasts too, and x = (1-s) x0_hat + s eps_hat for any v
    vr = torch.randn(3, 4, 5, 5, generator=g)
    x0h, eh = flow.x0_from_velocity(x, vr, 0.3), flow.noise_from_velocity(x, vr, 0.3)
    torch.testing.assert_close(0.7 * x0h + 0.3 * eh, x, atol=1e-6, rtol=0)


def test_timestep_conversions_and_flux_quantisation():
    assert flow.sigma_to_timestep(0.75) == 750.0 and flow.timestep_to_sigma(250.0) == 0.25
    q = flow.quantized_flux_sigma(torch.tensor([0.9081, 0.3849]), torch.bfloat16) * 1000
    assert float(q[0]) % 4 == 0 and float(q[1]) % 2 == 0
    assert float(flow.quantized_flux_sigma(0.9081, torch.float32)) == pytest.approx(0.9081)


def test_sigma_shape_errors():
    with pytest.raises(ValueError):
        flow.x0_from_velocity(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3))
