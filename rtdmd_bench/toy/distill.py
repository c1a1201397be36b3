"""Stage 1 on the toy world: AC-DMD (ALGORITHM.md §3) and plain DMD, composed from the shared pieces.

Every formula comes from the package: ``sampling.cps_step`` (rollouts and the one-step CPS projections, eq. 2.1/3.5),
``losses.ambient`` (``renoise`` 3.1, ``ambient_target``/``fake_score_loss`` 3.2, ``consistency_loss`` 3.4, the
renoise/consistency timestep samplers) and ``losses.dmd.dmd_loss`` (3.6). What is toy-specific is only the glue:
one process, full-parameter AdamW on small MLPs (no LoRA), a ``torch.Generator`` instead of ``SampleRNG`` (the
per-sample generators cost more than the whole toy step), and shorter schedules.

``ambient=True`` is AC-DMD: the generator's last executed step outputs ``x_s`` at level ``s = σ_k`` (random stop),
the fake score learns the ambient target from ``x_s`` and the DMD gradient is read through a one-step CPS
projection back to ``s``. ``ambient=False`` is plain DMD: the readout is x̂0 of the last executed step, ``s = 0``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rtdmd_bench.losses.ambient import (
    ambient_target,
    consistency_loss,
    consistency_timesteps,
    fake_score_loss,
    renoise,
    renoise_timesteps,
)
from rtdmd_bench.losses.dmd import dmd_loss
from rtdmd_bench.sampling import cps_step


@dataclass(frozen=True)
class Stage1Config:
    """Toy stage-1 schedule. Shipped image values in brackets where they differ."""

    steps: int = 1000  # fake-score steps [15000]
    batch: int = 256  # [9 x 8 GPUs]
    fake_update_ratio: int = 1  # generator update every this many steps [10]
    lr: float = 1e-3  # AdamW, generator and fake [3e-5 on LoRA]
    ema_decay: float = 0.99  # per step, as the reference (P7)
    consistency_weight: float = 0.01
    consistency_epsilon: float = 200.0
    grad_clip: float = 1.0
    normalize: bool = True  # DMD gradient_normalization
    ambient: bool = True  # False: plain DMD (x̂0 readout, s = 0)


@dataclass
class Stage1Result:
    generator: nn.Module  # the EMA generator (what stage 2 loads, §4.1)
    fake: nn.Module


def _sig(v: float | Tensor, n: int) -> Tensor:
    return torch.as_tensor(v, dtype=torch.float32).reshape(-1).expand(n).clone()


def rollout(gen: nn.Module, sigmas: list[float], eta: float, n: int, stop: int, g: torch.Generator,
            grad_last: bool, ambient: bool) -> tuple[Tensor, Tensor]:
    """Random-stop rollout (§2.3): run steps ``0..stop−1`` of CPS(η); grad only on the last executed step.

    Returns:
        ``(x_s [n, 2], s [n])``: AC-DMD: the CPS output of step ``stop−1`` at ``s = σ_stop`` (noise included);
        plain DMD: x̂0 of that step, ``s = 0``.
    """
    x = torch.randn(n, 2, generator=g)
    for k in range(stop):
        last = k == stop - 1
        sig, nxt = sigmas[k], (sigmas[k + 1] if ambient else 0.0) if last else sigmas[k + 1]
        z = torch.randn(n, 2, generator=g)
        with torch.set_grad_enabled(grad_last and last):
            v = gen(x, _sig(sig, n))
            x, _, _ = cps_step(x, v, sig, nxt, eta, z)
    s = sigmas[stop] if ambient else 0.0
    return x, _sig(s, n)


def fake_loss(fake: nn.Module, x_s: Tensor, s: Tensor, g: torch.Generator, eta: float,
              consistency_weight: float, consistency_epsilon: float) -> Tensor:
    """Ambient fake-score loss + consistency (eqs. 3.1-3.4) on detached generator samples ``x_s`` at levels ``s``."""
    n = x_s.shape[0]
    t_r = renoise_timesteps(s, torch.rand(n, generator=g))
    t = t_r / 1000.0
    eps = torch.randn(n, 2, generator=g)
    x_t, _ = renoise(x_s, s, t, eps)
    y, lam = ambient_target(x_s, eps, s, t, scale_out=True)
    v = fake(x_t, t)
    loss = fake_score_loss(v, y, lam)
    if consistency_weight:
        t_prev = consistency_timesteps(t_r, torch.rand(n, generator=g), consistency_epsilon) / 1000.0
        with torch.no_grad():  # stop-grad transitions, two independent noises (§3.5)
            x1, _, _ = cps_step(x_t, v.detach(), t, t_prev, eta, torch.randn(n, 2, generator=g))
            x2, _, _ = cps_step(x_t, v.detach(), t, t_prev, eta, torch.randn(n, 2, generator=g))
        tp = t_prev[:, None]
        h_a = x_t - t[:, None] * v
        loss = loss + consistency_weight * consistency_loss(h_a, x1 - tp * fake(x1, t_prev), x2 - tp * fake(x2, t_prev))
    return loss


def dm_loss(x_s: Tensor, s: Tensor, teacher: nn.Module, fake: nn.Module, g: torch.Generator, eta: float,
            normalize: bool, t_r: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Generator DM loss (§3.6): renoise ``x_s`` to ``t``, project teacher and fake back to ``s`` with one shared-noise
    CPS step (eq. 3.5; at s = 0 this is x̂0) and apply ``dmd_loss`` (eq. 3.6). Returns ``(loss, t [n])``."""
    n = x_s.shape[0]
    if t_r is None:
        t_r = renoise_timesteps(s, torch.rand(n, generator=g))
    t = t_r / 1000.0
    with torch.no_grad():
        x_t, _ = renoise(x_s.detach(), s, t, torch.randn(n, 2, generator=g))
        z = torch.randn(n, 2, generator=g)
        p_real, _, _ = cps_step(x_t, teacher(x_t, t), t, s, eta, z)
        p_fake, _, _ = cps_step(x_t, fake(x_t, t), t, s, eta, z)
    loss, _ = dmd_loss(x_s, p_fake, p_real, normalize=normalize)
    return loss, t


def _opt(net: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)


def _apply(opt: torch.optim.Optimizer, net: nn.Module, loss: Tensor, clip: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), clip)
    opt.step()


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """``θ_ema ← decay·θ_ema + (1 − decay)·θ`` over all parameters (stage 1, every step, §3.1)."""
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p, 1 - decay)


def train_stage1(teacher: nn.Module, init: nn.Module, cfg: Stage1Config, sigmas: list[float], eta: float,
                 seed: int) -> Stage1Result:
    """Two-time-scale AC-DMD (or plain DMD) loop of §3.7 on the toy world.

    Args:
        teacher: frozen velocity ``(x [n,2], σ [n]) -> [n,2]`` (exact or the imperfect MLP).
        init: pretrained velocity MLP; generator and fake score start as copies of it (§3.1).
        sigmas: N+1 levels ending at 0; eta: CPS η.
    """
    g = torch.Generator().manual_seed(seed)
    gen, fake = copy.deepcopy(init), copy.deepcopy(init)
    ema = copy.deepcopy(gen).requires_grad_(False)
    opt_g, opt_f = _opt(gen, cfg.lr), _opt(fake, cfg.lr)
    n_steps = len(sigmas) - 1
    for step in range(cfg.steps):
        stop = int(torch.randint(1, n_steps + 1, (), generator=g))  # one stop per batch (rank-0 broadcast)
        with torch.no_grad():
            x_s, s = rollout(gen, sigmas, eta, cfg.batch, stop, g, grad_last=False, ambient=cfg.ambient)
        loss_f = fake_loss(fake, x_s, s, g, eta, cfg.consistency_weight, cfg.consistency_epsilon)
        _apply(opt_f, fake, loss_f, cfg.grad_clip)
        if (step + 1) % cfg.fake_update_ratio == 0:  # after the fake update, with a fresh rollout (P13)
            stop = int(torch.randint(1, n_steps + 1, (), generator=g))
            x_s, s = rollout(gen, sigmas, eta, cfg.batch, stop, g, grad_last=True, ambient=cfg.ambient)
            loss_g, _ = dm_loss(x_s, s, teacher, fake, g, eta, cfg.normalize)
            _apply(opt_g, gen, loss_g, cfg.grad_clip)
        ema_update(ema, gen, cfg.ema_decay)
    return Stage1Result(generator=ema, fake=fake)
