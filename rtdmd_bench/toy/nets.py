"""Toy networks and the toy backbone (the d-dimensional stand-in for an image generator family).

* ``VelocityMLP``: ``v(x, σ)`` for ``x [B, d]``, ``σ [B]`` in [0, 1]; input ``[x, sin/cos(2π f σ)]``, SiLU MLP.
  The same class plays teacher (when imperfect), generator and fake score, as the same transformer does on images.
* ``ExactTeacher``: the closed-form ``E[ε − x0 | x_σ]`` of ``world.teacher_velocity`` as a parameter-free module.
* ``pretrain``: plain flow matching ``E|v(x_σ, σ) − (ε − x0)|²`` on exact samples; the result initialises the
  generator and the fake score (the images' "pretrained base model") and is the optional imperfect teacher.
* ``ToyBackbone``: implements ``rtdmd_bench.training.backbone.Backbone`` (d-dim latents, identity decode, unconditional
  world: prompts only name groups), so the shared recipes and samplers run on it unchanged.
* ``generate``: the 4-step CPS(η) sampler of the images (``sampling.cps_rollout``, sigmas [1, .9, .75, .5, 0]).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rtdmd_bench.sampling import cps_rollout
from rtdmd_bench.toy.world import Mixture, teacher_velocity

SD35_SIGMAS = (1.0, 0.9, 0.75, 0.5, 0.0)  # ALGORITHM.md §1.3: SD3/SD3.5 4-step schedule + terminal 0


class VelocityMLP(nn.Module):
    """``v(x, σ)``: ``x [B, d]``, ``σ [B]`` (or float) -> ``[B, d]``. ``cond`` is accepted and ignored."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, n_freq: int = 8):
        super().__init__()
        self.dim = dim
        self.register_buffer("freqs", 2 ** torch.arange(n_freq, dtype=torch.float32) * math.pi / 2, persistent=False)
        layers: list[nn.Module] = [nn.Linear(dim + 2 * n_freq, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, sigma: Any, cond: Any = None) -> Tensor:
        s = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(x.shape[0])
        ang = s[:, None] * self.freqs  # [B, F]
        return self.net(torch.cat([x.float(), torch.sin(ang), torch.cos(ang)], dim=1))


class ExactTeacher(nn.Module):
    """Closed-form teacher velocity of a mixture as a module: ``forward(x [B,d], σ [B]) -> [B,d]`` (no grad)."""

    def __init__(self, mix: Mixture):
        super().__init__()
        self.mix = mix
        self.dim = mix.dim

    def forward(self, x: Tensor, sigma: Any, cond: Any = None) -> Tensor:
        s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1).expand(x.shape[0])
        return teacher_velocity(self.mix, x.detach(), s).float()


def pretrain(mix: Mixture, steps: int = 1500, batch: int = 512, lr: float = 2e-3, seed: int = 0,
             hidden: int = 128) -> VelocityMLP:
    """Flow-matching MLP on exact samples: minimise ``mean |v(x_σ, σ) − (ε − x0)|²``, σ ~ U(0, 1).

    Cosine-decayed AdamW; deterministic given ``seed``. A brief run on purpose: a good many-step model whose
    4-step CPS samples are still blurred, as a pretrained image model is before distillation.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = VelocityMLP(dim=mix.dim, hidden=hidden)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        x0 = mix.sample(batch, g)
        eps = torch.randn(batch, mix.dim, generator=g)
        s = torch.rand(batch, generator=g)
        xs = (1 - s[:, None]) * x0 + s[:, None] * eps
        loss = ((net(xs, s) - (eps - x0)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net


def generate(net: nn.Module, n: int, generator: torch.Generator, sigmas: Sequence[float] = SD35_SIGMAS,
             eta: float = 0.9) -> Tensor:
    """``n`` samples ``[n, d]`` (``d = net.dim``) of the CPS(η) sampler over ``sigmas`` (the images' few-step
    generator)."""
    x = torch.randn(n, net.dim, generator=generator)

    def velocity(xk: Tensor, sigma: float, k: int) -> Tensor:
        return net(xk, torch.full((n,), sigma))

    def noise(k: int) -> Tensor:
        return torch.randn(n, net.dim, generator=generator)

    with torch.no_grad():
        return cps_rollout(x, velocity, list(sigmas), eta, noise)


def many_step_sigmas(n_steps: int) -> list[float]:
    """Uniform ``[1, …, 0]`` with ``n_steps`` steps (the teacher's many-step reference sampler)."""
    return [1 - i / n_steps for i in range(n_steps + 1)]


class ToyBackbone:
    """The ``Backbone`` protocol for the toy world (see ``rtdmd_bench.training.backbone``).

    Prompts carry no condition (``encode`` returns zeros); they only define the groups of GRPO. ``networks()``
    returns fresh copies: the frozen teacher (exact or the imperfect MLP) and generator/fake from ``init``.
    """

    family = "toy"
    lora_targets = None
    device = torch.device("cpu")

    def __init__(self, teacher: nn.Module, generator_init: nn.Module, fake_init: nn.Module | None = None,
                 sigmas: Sequence[float] = SD35_SIGMAS, eta: float = 0.9):
        self.teacher = teacher
        self.generator_init = generator_init
        self.fake_init = fake_init if fake_init is not None else generator_init
        self.sigmas = torch.tensor(sigmas, dtype=torch.float32)
        self.eta = eta
        self.latent_shape = (generator_init.dim,)

    def networks(self):
        from rtdmd_bench.training.backbone import Networks

        return Networks(teacher=self.teacher, generator=copy.deepcopy(self.generator_init),
                        fake=copy.deepcopy(self.fake_init))

    def encode(self, prompts: Sequence[str]) -> Tensor:
        return torch.zeros(len(prompts))

    def encode_uncond(self, n: int) -> Tensor:
        return torch.zeros(n)

    def velocity(self, net: nn.Module, x: Tensor, sigma: Tensor, cond: Any, guidance: float = 1.0,
                 uncond: Any = None) -> Tensor:
        return net(x, sigma, cond)  # unconditional world: guidance has nothing to act on

    def decode(self, latents: Tensor) -> Tensor:
        return latents  # identity: rewards score the 2-D point itself
