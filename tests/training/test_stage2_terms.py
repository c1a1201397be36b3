"""Stage-2 helpers of the exact-KL options: leave-one-out advantages, the KL time weight, the pathwise chain."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rtdmd_bench.losses.dmd import kl_time_weight
from rtdmd_bench.losses.policy import leave_one_out_advantages
from rtdmd_bench.training.terms import chain_x0, rollout_with_logprob


def test_leave_one_out_advantages_by_hand():
    r = {"a": torch.tensor([1.0, 2.0, 4.0, 10.0, 0.0]), "b": torch.zeros(5)}
    ids = torch.tensor([0, 0, 0, 1, 2])
    a = leave_one_out_advantages(r, {"a": 2.0, "b": 1.0}, ids, beta=0.5)
    # group 0 weighted rewards 2, 4, 8: A_i = 0.5·(R_i − mean of the other two); singletons get 0
    assert a.tolist() == pytest.approx([0.5 * (2 - 6), 0.5 * (4 - 5), 0.5 * (8 - 3), 0.0, 0.0])


def test_kl_time_weight():
    t = torch.tensor([0.5, 0.25])
    assert kl_time_weight(t, 2).tolist() == pytest.approx([2 * 0.25 / 0.25, 2 * 0.5625 / 0.0625])


class _Lin(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.3))

    def forward(self, x, sigma, cond=None):
        return self.w * x + sigma[:, None]


class _BB:
    sigmas = torch.tensor([1.0, 0.75, 0.5, 0.0])
    eta = 0.9

    def velocity(self, net, x, sigma, cond, guidance=1.0, uncond=None):
        return net(x, sigma, cond)


def test_chain_x0_reproduces_the_rollout_and_reaches_every_step():
    bb, net = _BB(), _Lin()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, generator=g)
    traj = rollout_with_logprob(bb, net, None, x, lambda k: torch.randn(4, 2, generator=g))
    x0 = chain_x0(bb, net, None, traj)
    assert torch.allclose(x0, traj.final, atol=1e-6)  # on-policy: same value as the stored sample
    (g_chain,) = torch.autograd.grad(x0.sum(), net.w)
    # one-step readout (last step only, input detached) has a different gradient: the chain adds earlier steps
    xl = traj.latents[:, -1]
    one = xl - 0.5 * net(xl, torch.full((4,), 0.5))
    (g_last,) = torch.autograd.grad(one.sum(), net.w)
    assert not torch.allclose(g_chain, g_last)
