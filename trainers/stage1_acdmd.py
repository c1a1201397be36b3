"""Stage 1: AC-DMD cold start (ALGORITHM.md §3). Also the plain-DMD baseline with ``dmd.ambient: false``.

Each train step: fake-score update on a fresh random-stop rollout (ambient target + consistency); every
``fake_update_ratio`` steps a generator update on its own fresh rollout through the one-step CPS projection and
``dmd_loss``; EMA of the generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from rtdmd_bench.flow import x0_from_velocity
from rtdmd_bench.training import loop
from rtdmd_bench.training.config import (
    ConsistencySection,
    DataSection,
    DiagnosticsSection,
    EMASection,
    EvalSection,
    LoraSection,
    ModelSection,
    OptimSection,
    RenoiseSection,
    RunSection,
)
from rtdmd_bench.training.ema import named_trainable
from rtdmd_bench.training.fake_score import FakeBatch, fake_score_step, renoise_draws
from rtdmd_bench.training.recipe import InMemoryWorld, Recipe
from rtdmd_bench.training.samplers import PromptSampler
from rtdmd_bench.training.session import Session
from rtdmd_bench.training.term_grads import metric_key
from rtdmd_bench.training.terms import dmd_generator_term, random_stop_rollout


@dataclass(frozen=True)
class DMDSection:
    """Generator side of stage 1 (§3.2, §3.6)."""

    fake_update_ratio: int = 10
    random_stop: bool = True
    real_guidance_scale: float = 4.5
    gradient_normalization: bool = True
    ambient: bool = True  # AC-DMD: start at the step's CPS output x_s (next_sigma); false: plain DMD on x̂0


@dataclass(frozen=True)
class Stage1Config:
    """Root config of ``rtdmd-bench train --stage 1``."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=lambda: DataSection(prompts="smoke"))
    train: RunSection = field(default_factory=RunSection)
    batch_size: int = 9
    expected_world: int = 1  # processes the config is written for (reference: 8 GPUs x 9 = 72 prompts per step)
    lora: LoraSection = field(default_factory=LoraSection)
    generator_optim: OptimSection = field(default_factory=OptimSection)
    fake_optim: OptimSection = field(default_factory=OptimSection)
    ema: EMASection = field(default_factory=EMASection)
    dmd: DMDSection = field(default_factory=DMDSection)
    renoise: RenoiseSection = field(default_factory=RenoiseSection)
    consistency: ConsistencySection = field(default_factory=ConsistencySection)
    eval: EvalSection = field(default_factory=EvalSection)
    diagnostics: DiagnosticsSection = field(default_factory=DiagnosticsSection)


def validate(cfg: Stage1Config, world: int | None = None) -> None:
    """Cheap checks before any model loads: model names, a training prompt set (not a ``test`` suite unless
    ``data.allow_test_prompts``), positive sizes. Any world size works (the batch is per rank; the reference's
    global batch is ``batch_size × expected_world``)."""
    from rtdmd_bench.trainers.common import validate_model, validate_prompts

    for name in filter(None, (cfg.model.name, cfg.model.generator_init, cfg.model.fake_init)):
        validate_model(name)
    validate_prompts(cfg.data, ())
    if cfg.batch_size < 1 or cfg.dmd.fake_update_ratio < 1 or cfg.expected_world < 1:
        raise ValueError("batch_size, dmd.fake_update_ratio and expected_world must be >= 1")


def _rollout(sess: Session, cfg: Stage1Config, cond: Any, keys: list[int], stream: str, grad: bool):
    """Random-stop rollout (§2.3); returns (x_s, s, stop) with x_s carrying the last step's graph when ``grad``."""
    bb, n, rng = sess.bb, sess.state.step, sess.rng
    n_steps = len(bb.sigmas) - 1
    stop = rng.randint(n, f"{stream}/stop", 1, n_steps + 1) if cfg.dmd.random_stop else n_steps
    x = rng.randn(n, f"{stream}/x", keys, bb.latent_shape, bb.device)
    noises = [rng.randn(n, f"{stream}/z{k}", keys, bb.latent_shape, bb.device) for k in range(stop)]
    last = random_stop_rollout(bb, sess.gen, cond, x, stop, noises, grad_last=grad)
    if cfg.dmd.ambient:
        return last.x_out, last.sigma_next, stop
    return x0_from_velocity(last.x_in, last.v, last.sigma), torch.zeros_like(last.sigma), stop


def fake_update(sess: Session, cfg: Stage1Config, cond: Any, keys: list[int]) -> dict[str, Any]:
    """One AdamW step of the fake score on a fresh random-stop rollout: ambient target + consistency (§3.4-3.5)."""
    with torch.no_grad():
        x_s, s, stop = _rollout(sess, cfg, cond, keys, "fake", grad=False)
    metrics = fake_score_step(sess, [FakeBatch(cond, x_s, s, keys)], cfg.renoise, cfg.consistency,
                              cfg.fake_optim.max_grad_norm, measured_batches=1)
    return {**metrics, "fake/stop": stop, "fake/s_mean": s.mean()}


def generator_update(sess: Session, cfg: Stage1Config, cond: Any, uncond: Any, keys: list[int]) -> dict[str, Any]:
    """One AdamW step of the generator with the (AC-)DMD loss on a fresh rollout (§3.6, P13)."""
    bb, n = sess.bb, sess.state.step
    x_s, s, stop = _rollout(sess, cfg, cond, keys, "gen", grad=True)
    t_r, eps = renoise_draws(sess, cfg.renoise, s, keys, "gen")
    z = sess.rng.randn(n, "gen/proj", keys, bb.latent_shape, bb.device)
    loss, metrics = dmd_generator_term(bb, sess.teacher, sess.fake, cond, uncond, x_s, s, t_r, eps, z,
                                       cfg.dmd.real_guidance_scale, cfg.dmd.gradient_normalization)
    loop.backward(loss, sess.gen, sync=True)
    norm = loop.optimizer_step(sess.state.optimizers["generator"], sess.state.schedulers["generator"],
                               sess.state.params("generator"), cfg.generator_optim.max_grad_norm)
    sess.state.extra["generator_updates"] = sess.state.extra.get("generator_updates", 0) + 1
    # the DM loss is the generator's only term: its gradient norm is the (rank-averaged, pre-clip) total
    return {**metrics, "grad_norm/generator": norm, metric_key("dm"): norm, "gen/stop": stop}


@dataclass
class Stage1Run:
    """A built stage-1 run: the session, its prompt sampler and the config."""

    sess: Session
    sampler: PromptSampler
    cfg: Stage1Config
    guard: Any = None  # training.term_grads.DeadTermGuard


def step(run: Stage1Run) -> dict[str, Any]:
    """One stage-1 train step (§3.7 pseudo-code)."""
    sess, cfg = run.sess, run.cfg
    n = sess.state.step
    idx, keys = run.sampler.indices(n)
    prompts = [sess.prompts[i] for i in idx]
    with torch.no_grad():
        cond, uncond = sess.bb.encode(prompts), sess.bb.encode_uncond(len(prompts))
    with sess.timer.phase("fake_update"):
        metrics = fake_update(sess, cfg, cond, keys)
    updated = (n + 1) % cfg.dmd.fake_update_ratio == 0
    if updated:
        with sess.timer.phase("generator_update"):
            metrics.update(generator_update(sess, cfg, cond, uncond, keys))
    ema = sess.state.emas.get("generator")
    if ema is not None:  # intended: once per generator update; P7 reference: every train step
        if cfg.ema.reference_schedule:
            ema.step(named_trainable(sess.gen), n)
        elif updated:
            ema.step(named_trainable(sess.gen), sess.state.extra["generator_updates"] - 1)
    metrics["loss"] = metrics["loss_fake"] + metrics.get("loss_dmd", 0.0)
    if run.guard is not None:
        run.guard.update(metrics)  # a configured term whose gradient stays exactly 0 stops the run here
    return {**metrics, **sess.timer.pop()}


def build(cfg: Stage1Config, cfg_dict: dict, *, weights: str | None, out: str, resume: bool = False,
          device: str | None = None, world: InMemoryWorld | None = None) -> Stage1Run:
    """Session and sampler of a run (``world``: in-memory backbone and prompts; stage 1 uses no rewards)."""
    from rtdmd_bench.trainers.common import build_backbone

    from rtdmd_bench import parallel
    from rtdmd_bench.training import session

    if world is None:
        validate(cfg)
    prompts, meta = session.run_prompts(cfg.data, world.prompts if world else None)
    dist = parallel.init(device)
    bb = world.backbone if world else build_backbone(cfg.model, weights, dist.device)
    sess = session.start(bb=bb, cfg_dict=cfg_dict, run=cfg.train, lora_cfg=cfg.lora, gen_optim=cfg.generator_optim,
                         fake_optim=cfg.fake_optim, ema_cfg=cfg.ema, out=out, prompts=prompts, metadata=meta,
                         resume=resume, dist=dist, rng_block=cfg.batch_size * dist.world if cfg.train.batched_rng else 0,
                         prompt_source=None if world else cfg.data.prompts)
    from rtdmd_bench.trainers.diagnostics import stage1_guard

    return Stage1Run(sess, PromptSampler(len(prompts), cfg.batch_size, dist.world, dist.rank, cfg.train.seed), cfg,
                     guard=stage1_guard(cfg))


def record(run: Stage1Run) -> dict:
    """``training.json`` of the export: stage 1, no rewards; the training prompts (``session.prompts_record``)."""
    from rtdmd_bench.training import lora, session

    trainer = type(run.cfg).__name__.removesuffix("Config").lower()  # stage1 | dmd
    return lora.training_record(1, trainer, {}, run.cfg.model.name, run.sess.state.step,
                                prompts=session.prompts_record(run.sess, run.cfg.data))


RECIPE = Recipe(config=Stage1Config, validate=validate, build=build, step=step, record=record)
