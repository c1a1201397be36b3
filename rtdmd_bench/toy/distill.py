"""Stage 1 on the toy world: the recipes ``trainers.stage1_acdmd`` (AC-DMD, ALGORITHM.md §3) and ``trainers.dmd``
(plain DMD) run unchanged on ``ToyBackbone``.

Nothing here computes a loss: ``Stage1Config`` is the toy's schedule and ``recipe_config`` maps it onto the
recipe's own config (the image YAMLs' fields); ``train_stage1`` calls the recipe's ``main`` with the backbone
and in-memory prompts (one per batch row: the world is unconditional) in a throw-away run directory. What is
toy-specific is only the schedule: full-parameter AdamW on small MLPs (the backbone has no LoRA targets), block
randomness (``run.batched_rng``) and shorter runs.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from rtdmd_bench.toy.nets import SD35_SIGMAS, ToyBackbone


@dataclass(frozen=True)
class Stage1Config:
    """Toy stage-1 schedule. Shipped image values in brackets where they differ."""

    steps: int = 1000  # fake-score steps = train steps [15000]
    batch: int = 256  # [9 x 8 GPUs]
    fake_update_ratio: int = 1  # generator update every this many steps [10]
    lr: float = 3e-4  # AdamW, generator [3e-5 on LoRA]
    fake_lr: float = 2e-3  # AdamW, fake score [3e-5 on LoRA]; faster than the generator so it keeps up
    fake_weight_clamp: float = 1e4  # max weight of the fake loss [10]: 10 down-weights levels t < 0.32, where
    #   a 2-D mode of std 0.25 is resolved; 1e4 trains every level t >= 0.01 at full weight
    ema_decay: float = 0.995  # every train step, as the reference (P7) [0.99]
    consistency_weight: float = 0.01
    consistency_epsilon: float = 200.0
    grad_clip: float = 1.0
    normalize: bool = True  # DMD gradient_normalization
    ambient: bool = True  # True: trainers.stage1_acdmd; False: trainers.dmd (x̂0 readout, s = 0)


@dataclass
class Stage1Result:
    generator: nn.Module  # the EMA generator (what stage 2 loads, §4.1)
    fake: nn.Module
    live: nn.Module  # the last generator iterate (diagnostics)


def recipe_config(cfg: Stage1Config, seed: int):
    """``(recipe module, its root config)`` for the schedule: AC-DMD or the plain-DMD baseline."""
    from rtdmd_bench.training.config import (
        ConsistencySection,
        EMASection,
        LoraSection,
        OptimSection,
        RunSection,
    )
    from trainers import dmd, stage1_acdmd

    module, root = (stage1_acdmd, stage1_acdmd.Stage1Config) if cfg.ambient else (dmd, dmd.DMDConfig)
    base = root()
    return module, dataclasses.replace(
        base,
        train=RunSection(steps=cfg.steps, seed=seed, console_every=0, log_backends=(), parallel="none",
                         batched_rng=True),
        batch_size=cfg.batch,
        lora=LoraSection(enabled=False),
        generator_optim=OptimSection(lr=cfg.lr, max_grad_norm=cfg.grad_clip),
        fake_optim=OptimSection(lr=cfg.fake_lr, max_grad_norm=cfg.grad_clip),
        ema=EMASection(decay=cfg.ema_decay, reference_schedule=True),
        dmd=dataclasses.replace(base.dmd, fake_update_ratio=cfg.fake_update_ratio,
                                gradient_normalization=cfg.normalize),
        renoise=dataclasses.replace(base.renoise, weight_clamp=(base.renoise.weight_clamp[0], cfg.fake_weight_clamp)),
        consistency=ConsistencySection(enabled=base.consistency.enabled and cfg.consistency_weight > 0,
                                       weight=cfg.consistency_weight, epsilon_timestep=cfg.consistency_epsilon),
    )


def train_stage1(teacher: nn.Module, init: nn.Module, cfg: Stage1Config, sigmas: Sequence[float] = SD35_SIGMAS,
                 eta: float = 0.9, seed: int = 0) -> Stage1Result:
    """Run the stage-1 recipe (AC-DMD, or plain DMD with ``ambient=False``) on the toy world.

    Args:
        teacher: frozen velocity ``(x [n,2], σ [n]) -> [n,2]`` (exact or the imperfect MLP).
        init: pretrained velocity MLP; generator and fake score start as copies of it (§3.1).
        sigmas: N+1 levels ending at 0; eta: CPS η.
    """
    from rtdmd_bench import config
    from rtdmd_bench.training.ema import named_trainable

    module, rcfg = recipe_config(cfg, seed)
    bb = ToyBackbone(teacher, init, sigmas=sigmas, eta=eta)
    with tempfile.TemporaryDirectory(prefix="toy-stage1-") as out:
        sess = module.main(rcfg, config.to_dict(rcfg), weights=None, out=out, device="cpu", backbone=bb,
                           prompts=[f"toy{i}" for i in range(cfg.batch)])
    with sess.state.emas["generator"].swapped(named_trainable(sess.gen)):
        ema = copy.deepcopy(sess.gen)
    return Stage1Result(generator=ema.requires_grad_(False), fake=sess.fake, live=sess.gen.requires_grad_(False))
