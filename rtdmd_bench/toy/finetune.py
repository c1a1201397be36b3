"""Stage 2 on the toy world: RTDMD (ALGORITHM.md §4) and its baselines/ablations, from the shared pieces.

One epoch (§4.8): K-group rollout of CPS(η) with per-step log-probs (``sampling.cps_step``/``cps_log_prob``), shared
noise within a group at the stochastic steps outside the SubGRPO subset S (``training.samplers.select_train_steps``,
``shared_step_noise``); one fake-score step on the final samples (``distill.fake_loss``: ambient target at s = 0 +
consistency); advantages (``losses.policy.group_advantages``); then per sub-batch and trained step j:

    j ∈ S : w_pg · clipped_policy_loss(logp_θ(x_{j+1} | x_j), logp_old, A)          (eq. 4.2)
    j = N−1: w_dm · dmd_loss(x̂0, x̂0_fake, x̂0_real)  +  reward_bp_loss(x_{N−1}, v, …, scale=w_bp, margin)   (§4.7)

and one clipped AdamW step. Switches give the methods: ``use_pg`` (SubGRPO), ``use_dm``, ``use_bp``,
``consistency_weight``. ``exact_kl=True`` replaces the paper's operational weights by the ones whose gradient is
an unbiased estimate of ``∇[KL_λ(p_θ ‖ p) − β E_θ r]`` (§5), see ``_exact`` below.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rtdmd_bench.flow import x0_from_velocity
from rtdmd_bench.losses.policy import clipped_policy_loss, group_advantages
from rtdmd_bench.losses.reward_bp import reward_bp_loss
from rtdmd_bench.sampling import cps_log_prob, cps_step
from rtdmd_bench.toy.distill import _apply, _opt, _sig, dm_loss, fake_loss
from rtdmd_bench.training.samplers import select_train_steps, shared_step_noise


@dataclass(frozen=True)
class Stage2Config:
    """Toy stage-2 schedule; shipped image values in brackets where they differ."""

    epochs: int = 100  # [1000]
    groups: int = 8  # prompts per epoch [48]
    group_size: int = 16  # K [24]
    sub_batches: int = 2  # [16]
    lr: float = 1e-3  # generator AdamW [3e-6 on LoRA]
    weight_decay: float = 1e-4
    fake_lr: float = 1e-3
    grad_clip: float = 1.0
    clip_range: float = 1e-5
    adv_clip: float = 5.0
    pg_steps: int = 2  # |S| of the stochastic steps 0..N−2
    w_pg: float = 1.0
    w_dm: float = 1e-3
    w_bp: float = 1e-4
    bp_margin: float = 3.0
    consistency_weight: float = 0.01
    use_pg: bool = True
    use_dm: bool = True
    use_bp: bool = True
    exact_kl: bool = False
    beta: float = 1.0  # only used by exact_kl (the paper weights have no β)
    exact_t: tuple[float, float] = (0.1, 0.5)  # DM levels of the exact mode (λ uniform on this range)


class ToyRewardModule(nn.Module):
    """Adapter giving a toy reward the registry's call shape ``(images, prompts, metadata) -> .scores [B]``."""

    def __init__(self, reward):
        super().__init__()
        self.reward = reward

    def forward(self, images: Tensor, prompts=None, metadata=None):
        return _Scores(self.reward(images))


@dataclass
class _Scores:
    scores: Tensor


@dataclass
class Rollout:
    latents: list[Tensor]  # N tensors [M, 2]: input of step k
    nexts: list[Tensor]  # N tensors [M, 2]: output of step k
    logps: list[Tensor]  # N tensors [M]
    stds: list[Tensor]
    prompts: list[str]
    group_ids: Tensor  # [M]


def rollout(gen: nn.Module, sigmas: list[float], eta: float, cfg: Stage2Config, selected: list[int], epoch: int,
            seed: int, g: torch.Generator) -> Rollout:
    """K-repeat rollout with log-probs (§2.4): fresh noise on S, group-shared noise on the other stochastic steps."""
    m = cfg.groups * cfg.group_size
    prompts = [f"seed{seed}-group{i}" for i in range(cfg.groups) for _ in range(cfg.group_size)]
    kind = "gaussian" if cfg.exact_kl else "simplified"
    x = torch.randn(m, 2, generator=g)
    out = Rollout([], [], [], [], prompts, torch.arange(cfg.groups).repeat_interleave(cfg.group_size))
    with torch.no_grad():
        for k in range(len(sigmas) - 1):
            z = shared_step_noise(prompts, k, epoch, (2,), selected) if cfg.use_pg else None
            z = torch.randn(m, 2, generator=g) if z is None else z
            v = gen(x, _sig(sigmas[k], m))
            nxt, mean, std = cps_step(x, v, sigmas[k], sigmas[k + 1], eta, z)
            out.latents.append(x)
            out.nexts.append(nxt)
            out.logps.append(cps_log_prob(nxt, mean, std, kind))
            out.stds.append(std)
            x = nxt
    return out


def advantages(r: Tensor, group_ids: Tensor, cfg: Stage2Config) -> Tensor:
    """Paper: ``group_advantages`` (eq. 4.1). Exact: ``β·(r − group mean)·K/(K−1)`` (= β·(r − leave-one-out mean))."""
    if not cfg.exact_kl:
        return group_advantages({"r": r}, {"r": 1.0}, group_ids)
    k = cfg.group_size
    centred = r - r.reshape(-1, k).mean(1).repeat_interleave(k)
    return cfg.beta * centred * k / (k - 1)


def _exact(cfg: Stage2Config, n_stochastic: int) -> tuple[float, float, float]:
    """``(w_pg, w_bp, bp_margin)`` of the exact-KL mode.

    The true policy gradient of ``β E[r]`` is ``E[β(r − b) Σ_{k<N−1} ∇ log π_k] + β E[∇ r(x̂0)]`` (eq. 5.3) with the
    *normalised* Gaussian log-density (``cps_log_prob(kind="gaussian")``), an unstandardised leave-one-out baseline
    (``advantages``), ``|S|`` of the ``N−1`` stochastic steps (weight ``(N−1)/|S|``) and an always-active hinge.
    """
    return n_stochastic / max(cfg.pg_steps, 1), cfg.beta, 1e6


def exact_dm_loss(gen: nn.Module, teacher: nn.Module, fake: nn.Module, sigmas: list[float], eta: float, m: int,
                  cfg: Stage2Config, g: torch.Generator) -> Tensor:
    """DM term of the exact-KL mode: pathwise through the WHOLE chain, unnormalised, KL-weighted.

    For ``λ`` uniform on ``[t0, t1]``, ``∇_θ KL(p_θ,t ‖ p_t) = E[(1−t)²/t² (x̂0_f − x̂0_r)ᵀ ∂x0/∂θ]`` (§5 a); the
    per-sample weight is applied by handing ``dmd_loss`` the scaled prediction ``P_r + w_t (P_f − P_r)``, and the
    ``mean`` over the 2 coordinates is undone (×2). The gradient reaches every generator step: with DM on the last
    step only, nothing pulls the mode-choosing early steps back towards p, so no choice of weights has p̃ as its
    fixed point.
    """
    x = torch.randn(m, 2, generator=g)
    for k in range(len(sigmas) - 1):  # reparameterised rollout, grad through every step
        x, _, _ = cps_step(x, gen(x, _sig(sigmas[k], m)), sigmas[k], sigmas[k + 1], eta, torch.randn(m, 2, generator=g))
    t0, t1 = cfg.exact_t
    t = t0 + (t1 - t0) * torch.rand(m, generator=g)
    zero = torch.zeros(m)
    return _weighted_dm(x, zero, t, teacher, fake, g, eta)


def _weighted_dm(x0: Tensor, s: Tensor, t: Tensor, teacher: nn.Module, fake: nn.Module, g: torch.Generator,
                 eta: float) -> Tensor:
    """``dmd_loss`` with per-sample weight ``(1−t)²/t²``, unnormalised, summed over the 2 coordinates."""
    from rtdmd_bench.losses.ambient import renoise
    from rtdmd_bench.losses.dmd import dmd_loss

    n = x0.shape[0]
    with torch.no_grad():
        x_t, _ = renoise(x0.detach(), s, t, torch.randn(n, 2, generator=g))
        x0_r = x_t - t[:, None] * teacher(x_t, t)  # CPS projection to s = 0 is x̂0 (eq. 3.5 at s = 0)
        x0_f = x_t - t[:, None] * fake(x_t, t)
        w = ((1 - t) ** 2 / t**2)[:, None]
        scaled_fake = x0_r + w * (x0_f - x0_r)
    loss, _ = dmd_loss(x0, scaled_fake, x0_r, normalize=False)
    return 2.0 * loss


def generator_update(gen, opt, teacher, fake, reward, ro: Rollout, adv: Tensor, selected: list[int],
                     sigmas: list[float], eta: float, cfg: Stage2Config, g: torch.Generator) -> None:
    """One optimizer step over all sub-batches and trained steps ``S ∪ {N−1}`` (§4.7)."""
    last = len(sigmas) - 2
    aux = cfg.use_dm or cfg.use_bp
    trained = sorted(set(selected) | ({last} if aux else set()))
    w_pg, w_bp, margin = _exact(cfg, last) if cfg.exact_kl else (cfg.w_pg, cfg.w_bp, cfg.bp_margin)
    kind = "gaussian" if cfg.exact_kl else "simplified"
    adv_clip = float("inf") if cfg.exact_kl else cfg.adv_clip
    rewards = {"r": (ToyRewardModule(reward), 1.0)}
    m = adv.shape[0]
    n_back = cfg.sub_batches * len(trained)
    opt.zero_grad(set_to_none=True)
    for idx in torch.randperm(m, generator=g).chunk(cfg.sub_batches):
        for j in trained:
            x_j = ro.latents[j][idx]
            v = gen(x_j, _sig(sigmas[j], len(idx)))
            loss = v.sum() * 0.0
            if j in selected:
                _, mean, _ = cps_step(x_j, v, sigmas[j], sigmas[j + 1], eta, torch.zeros_like(x_j))
                logp = cps_log_prob(ro.nexts[j][idx], mean, ro.stds[j], kind)
                pg, _ = clipped_policy_loss(logp, ro.logps[j][idx], adv[idx], (cfg.clip_range,) * 2, adv_clip)
                loss = loss + w_pg * pg
            if j == last and cfg.use_dm and not cfg.exact_kl:
                x0 = x0_from_velocity(x_j, v, sigmas[j])
                dm, _ = dm_loss(x0, torch.zeros(len(idx)), teacher, fake, g, eta, normalize=True)
                loss = loss + cfg.w_dm * dm
            if j == last and cfg.use_bp:
                bp, _ = reward_bp_loss(x_j, v, sigmas[j], 0.0, lambda z: z, rewards, ro.prompts, None, margin, w_bp)
                loss = loss + bp
            (loss / n_back).backward()
    if cfg.exact_kl and cfg.use_dm:  # pathwise DM through the chain, same 1/|trained| scale as the other terms
        (exact_dm_loss(gen, teacher, fake, sigmas, eta, m, cfg, g) / len(trained)).backward()
    nn.utils.clip_grad_norm_(gen.parameters(), cfg.grad_clip)
    opt.step()


def train_stage2(teacher: nn.Module, generator: nn.Module, fake: nn.Module, reward, cfg: Stage2Config,
                 sigmas: list[float], eta: float, seed: int) -> nn.Module:
    """RTDMD-family fine-tuning from the stage-1 generator and fake score; returns the trained generator."""
    g = torch.Generator().manual_seed(seed)
    gen, fake = copy.deepcopy(generator).requires_grad_(True), copy.deepcopy(fake).requires_grad_(True)
    opt_g, opt_f = _opt(gen, cfg.lr, cfg.weight_decay), _opt(fake, cfg.fake_lr)
    n_stochastic = len(sigmas) - 2
    for epoch in range(cfg.epochs):
        selected = select_train_steps(seed, epoch, 0, n_stochastic - 1, cfg.pg_steps) if cfg.use_pg else []
        ro = rollout(gen, sigmas, eta, cfg, selected, epoch, seed, g)
        final = ro.nexts[-1]
        if cfg.use_dm:  # fake tracks the generator, 1:1, on final samples (s = 0), before filtering (P14)
            zero = torch.zeros(final.shape[0])
            _apply(opt_f, fake, fake_loss(fake, final, zero, g, eta, cfg.consistency_weight, 200.0), cfg.grad_clip)
        with torch.no_grad():
            adv = advantages(reward(final), ro.group_ids, cfg)
        generator_update(gen, opt_g, teacher, fake, reward, ro, adv, selected, sigmas, eta, cfg, g)
    return gen
