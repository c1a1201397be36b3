"""group_advantages (eq. 4.1, invariant 15) and clipped_policy_loss (eq. 4.2, invariant 23)."""

import math

import pytest
import torch

from rtdmd_bench.losses.policy import clipped_policy_loss, group_advantages


def test_group_advantages_by_hand():
    r = torch.tensor([1.0, 3.0, 2.0, 6.0])
    groups = torch.tensor([0, 0, 1, 1])
    # group means 2,2,4,4 -> centred [-1,1,-2,2]; global std (ddof 0) sqrt(3.5)
    a1 = [c / (math.sqrt(3.5) + 1e-4) for c in (-1, 1, -2, 2)]
    std = math.sqrt(sum(v * v for v in a1) / 4)
    expected = torch.tensor([v / (std + 1e-4) for v in a1])
    torch.testing.assert_close(group_advantages({"a": r}, {"a": 1.0}, groups), expected)


def test_weighted_sum_of_two_rewards_by_hand():
    groups = torch.tensor([0, 0])
    ra, rb = torch.tensor([0.0, 2.0]), torch.tensor([5.0, 1.0])
    # A_a = [-1, 1]/(1+eps); A_b = [2, -2]/(2+eps); 2*A_a + 1*A_b ~ [0, 0] -> exactly the eps residual
    total = 2 * torch.tensor([-1.0, 1.0]) / (1 + 1e-4) + torch.tensor([2.0, -2.0]) / (2 + 1e-4)
    expected = (total - total.mean()) / (total.std(unbiased=False) + 1e-4)
    out = group_advantages({"a": ra, "b": rb}, {"a": 2.0, "b": 1.0}, groups)
    torch.testing.assert_close(out, expected)


def test_advantage_invariants():
    g = torch.Generator().manual_seed(0)
    k, m = 6, 8
    groups = torch.arange(m).repeat_interleave(k)
    rewards = {"x": torch.randn(k * m, generator=g) + groups, "y": torch.rand(k * m, generator=g) * 3}
    weights = {"x": 1.0, "y": 0.5}
    a = group_advantages(rewards, weights, groups)
    for name in rewards:  # each per-reward term has zero mean inside each group
        a_k = group_advantages({name: rewards[name]}, {name: 1.0}, groups)
        for gid in range(m):
            assert abs(a_k[groups == gid].mean().item()) < 1e-5
    assert abs(a.mean().item()) < 1e-5
    assert a.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-3)
    perm = torch.randperm(k * m, generator=g)
    a_perm = group_advantages({n: r[perm] for n, r in rewards.items()}, weights, groups[perm])
    torch.testing.assert_close(a_perm, a[perm])
    tiled = a[:, None].expand(-1, 4)  # T columns are identical copies
    assert torch.equal(tiled[:, 0], tiled[:, 3])


def test_missing_reward_is_an_error():
    with pytest.raises(KeyError, match="geneval"):
        group_advantages({"a": torch.ones(2)}, {"a": 1.0, "geneval": 1.0}, torch.zeros(2))


def test_policy_loss_by_hand_on_policy():
    logp = torch.zeros(2, requires_grad=True)
    loss, metrics = clipped_policy_loss(logp, torch.zeros(2), torch.tensor([1.0, -2.0]))
    assert loss.item() == pytest.approx(0.5)  # mean(-1*1, 2*1)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([-0.5, 1.0]))  # -A_b r_b / B
    assert metrics["clip_frac"].item() == 0.0 and metrics["ratio_mean"].item() == 1.0


def test_policy_gradient_inside_and_outside_clip_range():
    old = torch.zeros(4)
    eps = 0.1
    # ratios: inside (1.05), A>0 & r>1+eps (1.2), A<0 & r<1-eps (0.8), A<0 & r>1+eps (1.2: unclipped side)
    logp = torch.log(torch.tensor([1.05, 1.2, 0.8, 1.2])).requires_grad_(True)
    adv = torch.tensor([2.0, 1.0, -1.0, -1.0])
    loss, metrics = clipped_policy_loss(logp, old, adv, clip_range=(eps, eps))
    loss.backward()
    r = torch.exp(logp.detach())
    assert logp.grad[0].item() == pytest.approx(-2.0 * r[0].item() / 4, rel=1e-5)
    assert logp.grad[1].item() == 0.0 and logp.grad[2].item() == 0.0
    assert logp.grad[3].item() == pytest.approx(1.0 * r[3].item() / 4, rel=1e-5)
    assert metrics["clip_frac"].item() == pytest.approx(0.75)


def test_advantage_clip():
    logp = torch.zeros(1, requires_grad=True)
    loss, _ = clipped_policy_loss(logp, torch.zeros(1), torch.tensor([10.0]), adv_clip=5.0)
    assert loss.item() == -5.0
