"""Reward back-propagation: hinge, differentiable-only check, invariant 24."""

import pytest
import torch

from rtdmd_bench.losses.reward_bp import BPRewardError, check_bp_rewards, reward_bp_loss, reward_hinge_loss
from rtdmd_bench.registry import RegistryError


def test_hinge_by_hand():
    assert reward_hinge_loss(torch.tensor([1.0, 4.0]), margin=3.0, scale=0.5).item() == pytest.approx(0.5)
    assert reward_hinge_loss(torch.tensor([1.5]), 3.0, 1e-4).item() == pytest.approx(1.5e-4)


def test_only_differentiable_rewards_allowed():
    check_bp_rewards(["saturation"])
    with pytest.raises(BPRewardError, match="jpeg_compressibility"):
        check_bp_rewards(["saturation", "jpeg_compressibility"])
    with pytest.raises(RegistryError, match="Did you mean"):
        check_bp_rewards(["saturaton"])


def _setup():
    from rtdmd_bench.rewards import build

    reward = build("saturation")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=g)
    v = torch.randn(2, 3, 4, 4, generator=g).requires_grad_(True)
    return {"saturation": (reward, 1.0)}, x, v


def test_bp_zero_on_stochastic_step():
    rewards, x, v = _setup()
    loss, metrics = reward_bp_loss(x, v, 0.75, 0.5, torch.sigmoid, rewards, ["a", "b"])
    loss.backward()
    assert loss.item() == 0.0 and metrics == {}
    assert torch.equal(v.grad, torch.zeros_like(v))


def test_bp_last_step_gradient_increases_reward():
    rewards, x, v = _setup()
    loss, metrics = reward_bp_loss(x, v, 0.5, 0.0, torch.sigmoid, rewards, ["a", "b"], scale=1.0)
    loss.backward()
    assert v.grad.abs().sum() > 0
    r0 = metrics["bp_reward"].item()
    with torch.no_grad():
        _, m1 = reward_bp_loss(x, v - 10.0 * v.grad, 0.5, 0.0, torch.sigmoid, rewards, ["a", "b"], scale=1.0)
    assert m1["bp_reward"].item() > r0
