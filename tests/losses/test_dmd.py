"""dmd_loss (ALGORITHM.md eq. 3.6, invariant 12), checked against hand-computed numbers."""

import pytest
import torch

from rtdmd_bench.losses.dmd import dmd_loss


def _x():
    return torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)


def test_value_and_gradient_by_hand():
    x = _x()
    real = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    fake = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    # g = fake - real = [[1,0],[1,0]]; normalisers mean|x-real| = 1.5 and 2.5 -> g = [[2/3,0],[0.4,0]]
    loss, metrics = dmd_loss(x, fake, real)
    expected = 0.5 * ((2 / 3) ** 2 + 0.4**2) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(x.grad, torch.tensor([[2 / 3 / 4, 0.0], [0.4 / 4, 0.0]]))
    assert metrics["dmd_normalizer"].item() == pytest.approx(2.0)


def test_zero_when_fake_equals_real():
    x = _x()
    pred = torch.tensor([[0.5, 0.1], [2.0, 9.0]])
    loss, _ = dmd_loss(x, pred.clone(), pred)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_unnormalised_gradient_is_difference_over_numel():
    x = _x()
    real = torch.zeros(2, 2)
    fake = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    loss, _ = dmd_loss(x, fake, real, normalize=False)
    loss.backward()
    torch.testing.assert_close(x.grad, fake / 4)
    assert loss.item() == pytest.approx(0.5 * (1 + 4 + 0.25) / 4)


def test_descent_moves_toward_teacher():
    x = torch.tensor([[1.0, -1.0, 2.0]], requires_grad=True)
    real = torch.zeros(1, 3)
    fake = x.detach().clone()  # the fake score thinks the sample is where it is
    loss, _ = dmd_loss(x, fake, real)
    loss.backward()
    x_new = x.detach() - 0.5 * x.grad
    assert (x_new - real).abs().sum() < (x.detach() - real).abs().sum()


def test_float64_internals_and_bf16_input():
    x = torch.randn(3, 4, 5, dtype=torch.bfloat16, requires_grad=True)
    loss, _ = dmd_loss(x, torch.randn(3, 4, 5), torch.randn(3, 4, 5))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert x.grad.dtype == torch.bfloat16
