"""Stage 2 on the toy world: the recipes ``stage2_rtdmd`` (RTDMD, ALGORITHM.md §4) and ``grpo`` (pure Flow-GRPO) run
unchanged on ``ToyBackbone`` with the toy reward as an in-memory reward module, through the recipe interface.

``TOY_STAGE2`` is the toy's schedule as values of the recipe's own config (dotted keys, image values in brackets);
a method adds its switches on top (``toy.bench.METHODS``). ``exact_kl_values`` is the §5 exact-KL weighting:
``sampling.logprob=gaussian``, ``advantages.mode=raw_loo`` (β), ``policy.subset_correction``, ``bp.scale=β`` with an
always-active hinge (margin 1e6), ``aux``: weight 1, no normaliser, ``time_weight=kl``, ``path=chain``, renoise
t ∈ ``t_range``, so the gradient is an unbiased estimate of ``∇[E_{t∼U(t_range)} KL(p_θ,t ‖ p_t) − β E_θ r]`` (its
fixed point approaches p̃ as the t-range shrinks to 0). Nothing here computes a loss.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from rtdmd_bench.toy.distill import recipe_config
from rtdmd_bench.toy.nets import SD35_SIGMAS, ToyBackbone

TOY_STAGE2: dict[str, Any] = {
    "train.steps": 200,  # epochs [1000]
    "train.console_every": 0, "train.log_backends": [], "train.parallel": "none", "train.batched_rng": True,
    # 8 groups of K = 16 per epoch [48 prompts x 24], one sampling iteration, 2 sub-batches [16]
    "sampling.batch_size": 128, "sampling.k": 16, "sampling.batches_per_epoch": 1, "sampling.grad_accum": 2,
    "rewards": {"r": 1.0},
    "aux.fake_batch_size": 128,
    "renoise.weight_clamp": [0.0, 1e4],  # see toy.distill.TOY_STAGE1
    "lora.enabled": False,
    "generator_optim.lr": 3e-4,  # [3e-6 on LoRA]
    "fake_optim.lr": 2e-3,  # faster than the generator so the fake score keeps up (as in stage 1)
    "ema.enabled": False,  # the toy reports the live generator
    "diagnostics.term_grad_subbatches": 0,  # per-term gradient norms (the β-meter) on every sub-batch
}


def exact_kl_values(beta: float, t_range: tuple[float, float]) -> dict[str, Any]:
    """Config values of the §5 exact-KL weighting at tilt ``beta`` with DM levels ``t ∈ t_range`` (module doc)."""
    from rtdmd_bench.flow import sigma_to_timestep

    return {"sampling.logprob": "gaussian", "advantages.mode": "raw_loo", "advantages.beta": beta,
            "policy.subset_correction": True, "bp.margin": 1e6, "bp.scale": beta, "aux.weight": 1.0,
            "aux.gradient_normalization": False, "aux.time_weight": "kl", "aux.path": "chain",
            "renoise.timestep_offset": sigma_to_timestep(t_range[0]),
            "renoise.end_timestep": sigma_to_timestep(t_range[1])}


def calibrated_values(beta: float, epochs: int) -> dict[str, Any]:
    """Config values of the calibrated mode at tilt ``beta`` (``aux.tilt_beta``, ``losses.tilt``): DM alone, with
    a fake score that learns ``q·exp(−βr)``, so its fixed point is ``p̃ ∝ p·exp(βr)``; no policy gradient, no BP.

    The rest is schedule, chosen on seed 0 of the bump at β = 1 only (single runs, 300 epochs): the DM gradient
    through the whole rollout (``aux.path: chain``; with the last step alone β_eff wandered in 0.73–0.91 between
    50-epoch checkpoints, with chain + EMA in 0.91–0.94 from epoch 200), the generator EMA (0.97 per epoch, against
    the iterate's jitter), ``epochs`` = 1.5× the toy schedule (300), and no clipping of the fake score's gradient, so that the
    epochs whose rare low-reward samples carry large weights are not cut (with and without it, β = 1 stayed within
    the run-to-run noise).
    """
    return {"policy.enabled": False, "bp.enabled": False, "aux.weight": 1.0, "aux.tilt_beta": beta,
            "aux.path": "chain", "fake_optim.max_grad_norm": 1e3, "train.steps": epochs,
            "ema.enabled": True, "ema.decay": 0.97, "ema.update_interval": 1, "ema.warmup": False}


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
class Stage2Result:
    """A trained stage-2 generator (the EMA weights when the config enables the EMA, else the last iterate) and
    the run's ``metrics.jsonl`` rows (one per epoch: losses, ``grad_norm/term/*``, ``beta_meter/*``, ...)."""

    generator: nn.Module
    metrics: list[dict]


def train_stage2(teacher: nn.Module, generator: nn.Module, fake: nn.Module, reward, values: Mapping[str, Any],
                 recipe: str = "stage2_rtdmd", sigmas: Sequence[float] = SD35_SIGMAS, eta: float = 0.9,
                 seed: int = 0) -> Stage2Result:
    """Run a stage-2 recipe from the stage-1 generator and fake score.

    ``values``: dotted recipe-config values (``TOY_STAGE2`` and a method's switches). The SubGRPO step range is set
    to every stochastic step of ``sigmas`` (``policy.range_end = N − 2``).
    """
    import copy
    import json
    from pathlib import Path

    from rtdmd_bench import config
    from rtdmd_bench.training.ema import named_trainable
    from rtdmd_bench.training.recipe import InMemoryWorld

    rec, cfg = recipe_config(recipe, {"policy.range_end": len(sigmas) - 3, **values}, seed)
    # a pool of group names; the K-repeat sampler draws batch/K of them per epoch (the world is unconditional)
    n_prompts = 8 * cfg.sampling.batch_size // cfg.sampling.k
    world = InMemoryWorld(ToyBackbone(teacher, generator, fake_init=fake, sigmas=sigmas, eta=eta),
                          prompts=[f"group{i}" for i in range(n_prompts)],
                          rewards={"r": (ToyRewardModule(reward), 1.0)})
    with tempfile.TemporaryDirectory(prefix="toy-stage2-") as out:
        sess = rec(cfg, config.to_dict(cfg), weights=None, out=out, device="cpu", world=world)
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    gen = sess.gen
    ema = sess.state.emas.get("generator")
    if ema is not None:
        with ema.swapped(named_trainable(sess.gen)):
            gen = copy.deepcopy(sess.gen)
    return Stage2Result(gen.requires_grad_(False), rows)
