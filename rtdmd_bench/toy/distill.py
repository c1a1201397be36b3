"""Stage 1 on the toy world: the recipes ``stage1_acdmd`` (AC-DMD, ALGORITHM.md §3) and ``dmd`` (plain DMD) run
unchanged on ``ToyBackbone``, through the recipe interface, with their own config classes.

The toy's schedule is a set of values of the recipe's config (``TOY_STAGE1``, dotted keys on top of the recipe's
defaults; the shipped image YAML values in brackets): nothing here computes a loss or shadows a config field.
What is toy-specific is only the schedule: full-parameter AdamW on small MLPs (the backbone has no LoRA targets),
block randomness (``train.batched_rng``) and shorter runs.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from rtdmd_bench.toy.nets import SD35_SIGMAS, ToyBackbone

TOY_STAGE1: dict[str, Any] = {
    "train.steps": 1000,  # fake-score steps = train steps [15000]
    "train.console_every": 0, "train.log_backends": [], "train.parallel": "none", "train.batched_rng": True,
    "batch_size": 256,  # [9 x 8 GPUs]
    "lora.enabled": False,  # small MLPs, every parameter trained [LoRA r32]
    "dmd.fake_update_ratio": 1,  # generator update every step [10]
    "generator_optim.lr": 3e-4,  # [3e-5 on LoRA]
    "fake_optim.lr": 2e-3,  # [3e-5]; faster than the generator so it keeps up
    # max weight of the fake loss [10]: 10 down-weights levels t < 0.32, where a 2-D mode of std 0.25 is
    # resolved; 1e4 trains every level t >= 0.01 at full weight
    "renoise.weight_clamp": [0.0, 1e4],
    "ema.decay": 0.995, "ema.reference_schedule": True,  # every train step, as the reference (P7) [0.99]
}


@dataclass
class Stage1Result:
    generator: nn.Module  # the EMA generator (what stage 2 loads, §4.1)
    fake: nn.Module
    live: nn.Module  # the last generator iterate (diagnostics)


def recipe_config(recipe: str, values: Mapping[str, Any], seed: int):
    """``(Recipe, config)``: the registered recipe's defaults with the toy ``values`` and ``train.seed`` set."""
    from rtdmd_bench.config import with_values
    from rtdmd_bench.training.registry import TRAINERS

    rec = TRAINERS.get(recipe)
    return rec, with_values(rec.config(), {**values, "train.seed": seed})


def train_stage1(teacher: nn.Module, init: nn.Module, values: Mapping[str, Any], recipe: str = "stage1_acdmd",
                 sigmas: Sequence[float] = SD35_SIGMAS, eta: float = 0.9, seed: int = 0) -> Stage1Result:
    """Run a stage-1 recipe (``stage1_acdmd`` or ``dmd``) with config ``values`` on the toy world.

    Args:
        teacher: frozen velocity ``(x [n,2], σ [n]) -> [n,2]`` (exact or the imperfect MLP).
        init: pretrained velocity MLP; generator and fake score start as copies of it (§3.1).
        values: dotted recipe-config values (``TOY_STAGE1`` and a method's overrides).
        sigmas: N+1 levels ending at 0; eta: CPS η.
    """
    from rtdmd_bench import config
    from rtdmd_bench.training.ema import named_trainable
    from rtdmd_bench.training.recipe import InMemoryWorld

    rec, cfg = recipe_config(recipe, values, seed)
    world = InMemoryWorld(ToyBackbone(teacher, init, sigmas=sigmas, eta=eta),
                          prompts=[f"toy{i}" for i in range(cfg.batch_size)])
    with tempfile.TemporaryDirectory(prefix="toy-stage1-") as out:
        sess = rec(cfg, config.to_dict(cfg), weights=None, out=out, device="cpu", world=world)
    with sess.state.emas["generator"].swapped(named_trainable(sess.gen)):
        ema = copy.deepcopy(sess.gen)
    return Stage1Result(generator=ema.requires_grad_(False), fake=sess.fake, live=sess.gen.requires_grad_(False))
