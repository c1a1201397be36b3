"""Stage 2 on the toy world: the recipes ``trainers.stage2_rtdmd`` (RTDMD, ALGORITHM.md §4) and ``trainers.grpo``
(pure Flow-GRPO) run unchanged on ``ToyBackbone`` with the toy reward as an in-memory reward module.

``Stage2Config`` is the toy's schedule plus method switches; ``recipe_config`` maps it onto the recipe's config:

    use_pg=False        policy.enabled=false            (BP-only, RTDMD without SubGRPO)
    use_dm=False        aux.loss=none                   (no fake score, no DM term)
    use_bp=False        bp.enabled=false
    recipe="grpo"       trainers.grpo (every stochastic step trained, no SubGRPO subset, no aux terms)
    exact_kl=True       the §5 exact-KL weighting: sampling.logprob=gaussian, advantages.mode=raw_loo (β),
                        policy.subset_correction, bp.scale=β with an always-active hinge (margin 1e6),
                        aux: weight 1, no normaliser, time_weight=kl, path=chain, renoise t ∈ exact_t

so the gradient is an unbiased estimate of ``∇[E_{t∼U(exact_t)} KL(p_θ,t ‖ p_t) − β E_θ r]`` (its fixed point
approaches p̃ as the t-range shrinks to 0). Nothing here computes a loss.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from rtdmd_bench.toy.nets import SD35_SIGMAS, ToyBackbone


@dataclass(frozen=True)
class Stage2Config:
    """Toy stage-2 schedule and method switches; shipped image values in brackets where they differ."""

    epochs: int = 200  # [1000]
    groups: int = 8  # prompts per epoch [48]
    group_size: int = 16  # K [24]
    sub_batches: int = 2  # [16]
    lr: float = 3e-4  # generator AdamW [3e-6 on LoRA]
    weight_decay: float = 1e-4
    fake_lr: float = 2e-3  # faster than the generator so the fake score keeps up (as in stage 1)
    fake_weight_clamp: float = 1e4  # max weight of the fake loss [10]; see toy.distill.Stage1Config
    grad_clip: float = 1.0
    clip_range: float = 1e-5
    adv_clip: float = 5.0
    pg_steps: int = 2  # |S| of the stochastic steps 0..N−2
    w_dm: float = 1e-3
    w_bp: float = 1e-4
    bp_margin: float = 3.0
    consistency_weight: float = 0.01
    use_pg: bool = True
    use_dm: bool = True
    use_bp: bool = True
    recipe: str = "rtdmd"  # "rtdmd" (trainers.stage2_rtdmd) | "grpo" (trainers.grpo)
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


def recipe_config(cfg: Stage2Config, seed: int, n_steps: int):
    """``(recipe module, its root config)`` for the schedule; ``n_steps`` = N generator steps."""
    from rtdmd_bench.training.config import (
        ConsistencySection,
        EMASection,
        LoraSection,
        OptimSection,
        RunSection,
    )
    from trainers import grpo
    from trainers import stage2_rtdmd as s2

    if cfg.recipe not in ("rtdmd", "grpo"):
        raise ValueError(f"unknown stage-2 recipe {cfg.recipe!r}; expected rtdmd or grpo")
    module, root = (grpo, grpo.GRPOConfig) if cfg.recipe == "grpo" else (s2, s2.Stage2Config)
    base, exact, batch = root(), cfg.exact_kl, cfg.groups * cfg.group_size
    renoise = dataclasses.replace(base.renoise, weight_clamp=(base.renoise.weight_clamp[0], cfg.fake_weight_clamp))
    if exact:  # t_r ~ U[1000·t0, 1000·t1] at s = 0 (offset = start, end = stop)
        renoise = dataclasses.replace(renoise, timestep_offset=1000 * cfg.exact_t[0], end_timestep=1000 * cfg.exact_t[1])
    aux_on = cfg.use_dm and base.aux.loss != "none"
    return module, dataclasses.replace(
        base,
        train=RunSection(steps=cfg.epochs, seed=seed, console_every=0, log_backends=(), parallel="none",
                         batched_rng=True),
        sampling=s2.SamplingSection(batch_size=batch, k=cfg.group_size, batches_per_epoch=1,
                                    grad_accum=cfg.sub_batches, logprob="gaussian" if exact else "simplified"),
        rewards={"r": 1.0},
        advantages=dataclasses.replace(base.advantages, mode="raw_loo" if exact else "standardized",
                                       adv_clip=cfg.adv_clip, beta=cfg.beta),
        policy=dataclasses.replace(base.policy, enabled=cfg.use_pg, subset_correction=exact,
                                   clip_range=(cfg.clip_range, cfg.clip_range), range_start=0, range_end=n_steps - 2,
                                   num_train_steps=cfg.pg_steps),
        aux=dataclasses.replace(
            base.aux, loss="ac_dmd" if aux_on else "none", weight=1.0 if exact else cfg.w_dm,
            gradient_normalization=not exact, time_weight="kl" if exact else "none",
            path="chain" if exact else "last_step", fake_batch_size=batch,
            consistency=ConsistencySection(enabled=cfg.consistency_weight > 0, weight=cfg.consistency_weight)),
        bp=dataclasses.replace(base.bp, enabled=cfg.use_bp and base.bp.enabled, rewards=None,
                               margin=1e6 if exact else cfg.bp_margin, scale=cfg.beta if exact else cfg.w_bp),
        renoise=renoise,
        lora=LoraSection(enabled=False),
        generator_optim=OptimSection(lr=cfg.lr, weight_decay=cfg.weight_decay, max_grad_norm=cfg.grad_clip),
        fake_optim=OptimSection(lr=cfg.fake_lr, max_grad_norm=cfg.grad_clip),
        ema=EMASection(enabled=False),  # the toy reports the live generator
    )


def train_stage2(teacher: nn.Module, generator: nn.Module, fake: nn.Module, reward, cfg: Stage2Config,
                 sigmas: Sequence[float] = SD35_SIGMAS, eta: float = 0.9, seed: int = 0) -> nn.Module:
    """Run the stage-2 recipe from the stage-1 generator and fake score; returns the trained generator."""
    from rtdmd_bench import config

    module, rcfg = recipe_config(cfg, seed, len(sigmas) - 1)
    bb = ToyBackbone(teacher, generator, fake_init=fake, sigmas=sigmas, eta=eta)
    # a pool of group names; the K-repeat sampler draws `groups` of them per epoch (the world is unconditional)
    prompts = [f"group{i}" for i in range(8 * cfg.groups)]
    with tempfile.TemporaryDirectory(prefix="toy-stage2-") as out:
        sess = module.main(rcfg, config.to_dict(rcfg), weights=None, out=out, device="cpu", backbone=bb,
                           rewards={"r": (ToyRewardModule(reward), 1.0)}, prompts=prompts)
    return sess.gen.requires_grad_(False)
