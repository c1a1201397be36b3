"""Stage 2: RTDMD (ALGORITHM.md §4). With ``aux.loss: none`` and ``bp.enabled: false`` it is the pure-GRPO
baseline (``trainers/grpo.py``).

One epoch = one optimizer step of the generator (and of the fake score):
rollouts with log-probs (K per prompt, shared noise on the stochastic steps not in S) -> rewards -> fake update on
all rollouts (s=0) -> global group advantages -> per sub-batch and trained step j: PPO on j ∈ S, and on the
deterministic last step w_dm·DMD + reward back-propagation -> clip, AdamW, EMA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from rtdmd_bench.trainers.diagnostics import check
from rtdmd_bench.trainers.stage2_parts import advantages, beta_meter, fake_update, last_step_loss, rollout

from rtdmd_bench import parallel
from rtdmd_bench.losses.policy import clipped_policy_loss, filter_zero_advantage
from rtdmd_bench.losses.reward_bp import differentiable_subset
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
from rtdmd_bench.training.recipe import InMemoryWorld, Recipe
from rtdmd_bench.training.samplers import KRepeatSampler, select_train_steps
from rtdmd_bench.training.session import Session
from rtdmd_bench.training.terms import kl_to_reference, policy_logprob


@dataclass(frozen=True)
class SamplingSection:
    """K-repeat rollouts (§4.3): per-rank ``batch_size`` prompts-with-repeats, ``batches_per_epoch`` iterations."""

    batch_size: int = 9
    k: int = 24
    batches_per_epoch: int = 16
    grad_accum: int = 16          # generator sub-batches per epoch (N_local / grad_accum each, P19)
    logprob: Literal["simplified", "gaussian"] = "simplified"
    expected_world: int = 1       # GPUs the config is written for (static validation; runs use the real world)


@dataclass(frozen=True)
class AdvantageSection:
    """Advantages of the policy term.

    ``mode``: ``standardized`` (paper, eq. 4.1: per-reward group mean over the global std, weighted sum,
    re-standardised; clipped to ±``adv_clip`` in the loss) or ``raw_loo`` (exact-KL mode, §5:
    ``beta``·(R − leave-one-out group mean), not standardised and never clipped, so the policy term is an unbiased
    estimate of β·∇E[R]). ``beta`` is read only by ``raw_loo``.
    """

    mode: Literal["standardized", "raw_loo"] = "standardized"
    global_std: bool = True
    eps: float = 1e-4
    adv_clip: float = 5.0
    beta: float = 1.0


@dataclass(frozen=True)
class PolicySection:
    """Clipped policy loss (eq. 4.2), SubGRPO step selection (§4.4), optional KL to the initial policy.

    ``enabled: false`` drops the policy term (no PPO step, fresh noise on every step; the BP-only and
    no-SubGRPO variants). ``subset_correction`` multiplies the PPO term by ``(N−1)/|S|`` so that the subset sum
    over S is an unbiased estimate of the sum over all N−1 stochastic steps (eq. 5.3; the paper does not).
    """

    enabled: bool = True
    subset_correction: bool = False
    clip_range: tuple[float, float] = (1e-5, 1e-5)
    kl_beta: float = 0.0
    step_selection: bool = True
    range_start: int = 0
    range_end: int = 2
    num_train_steps: int = 2


@dataclass(frozen=True)
class AuxSection:
    """Last-step distribution matching (§4.7 item 1) and the fake score that tracks the generator (§4.6).

    Paper defaults: DM on the one-step x̂0 of the last step (``path: last_step``), per-sample normaliser
    (``gradient_normalization``), no time weight. The exact-KL mode of §5 uses ``gradient_normalization: false``,
    ``time_weight: kl`` (per-sample ``D·(1−t)²/t²``, the DMD gradient becomes ∇KL(p_θ,t‖p_t) in nats) and
    ``path: chain`` (the DM gradient reaches every generator step through the reparameterised rollout; with DM on
    the last step only, nothing pulls the mode-choosing early steps towards the teacher).

    ``tilt_beta`` β > 0 is the calibrated mode (``losses.tilt``): the fake score learns ``q·exp(−βR)`` (its loss
    weights each rollout by ``exp(−βR)``, normalised over the epoch batch; R = the ``rewards``-weighted sum of raw
    scores), so the DM term alone has the fixed point ``p̃ ∝ p·exp(βR)`` whatever its weighting; it requires
    ``policy.enabled: false`` and ``bp.enabled: false`` (they would add a second, uncalibrated tilt).
    ``tilt_momentum``: memory of the running normaliser of those weights (per epoch).
    """

    loss: Literal["ac_dmd", "dmd", "none"] = "ac_dmd"
    weight: float = 0.001
    real_guidance_scale: float = 4.5
    gradient_normalization: bool = True
    time_weight: Literal["none", "kl"] = "none"
    path: Literal["last_step", "chain"] = "last_step"
    fake_batch_size: int = 8
    tilt_beta: float = 0.0
    tilt_momentum: float = 0.9
    consistency: ConsistencySection = field(default_factory=ConsistencySection)


@dataclass(frozen=True)
class BPSection:
    """Reward back-propagation on the deterministic last step: ``L_bp = scale·mean relu(margin − R)`` with
    ``R = Σ_k w_k·r_k`` over ``rewards`` = ``{reward: w_k}`` in each scorer's own units (§4.7; PickScore is raw
    ``logit_scale·cos`` ≈ 22 here, so the reference's PickScore/26 is ``pickscore: 0.0384615``). ``null``: the
    differentiable training rewards with their advantage weights. The resolved mapping is written into the run's
    ``config.json`` and ``training.json``; a hinge that is never active stops the run (``diagnostics``).
    """

    enabled: bool = True
    rewards: dict[str, float] | None = None
    margin: float = 3.0
    scale: float = 1e-4
    only_deterministic: bool = True
    batch_size: int = 0  # decode+score in chunks of this many images (FLUX: 2, §6.2 bp_batch_size); 0 = whole batch


@dataclass(frozen=True)
class Stage2Config:
    """Root config of ``rtdmd-bench train --stage 2``."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: RunSection = field(default_factory=RunSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    rewards: dict[str, float] = field(default_factory=lambda: {"saturation": 1.0})
    reward_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. {geneval_partial: {position_quirk: true}}
    advantages: AdvantageSection = field(default_factory=AdvantageSection)
    policy: PolicySection = field(default_factory=PolicySection)
    aux: AuxSection = field(default_factory=AuxSection)
    bp: BPSection = field(default_factory=BPSection)
    renoise: RenoiseSection = field(default_factory=RenoiseSection)
    lora: LoraSection = field(default_factory=LoraSection)
    generator_optim: OptimSection = field(default_factory=lambda: OptimSection(lr=3e-6, weight_decay=1e-4))
    fake_optim: OptimSection = field(default_factory=OptimSection)
    ema: EMASection = field(default_factory=lambda: EMASection(decay=0.9, update_interval=8, warmup=True))
    eval: EvalSection = field(default_factory=EvalSection)
    diagnostics: DiagnosticsSection = field(default_factory=DiagnosticsSection)


def bp_weights(cfg: Stage2Config) -> dict[str, float]:
    """Rewards used for BP: explicit ``bp.rewards`` or the differentiable subset of ``rewards`` (P15)."""
    if not cfg.bp.enabled:
        return {}
    return dict(cfg.bp.rewards) if cfg.bp.rewards is not None else differentiable_subset(cfg.rewards)[0]


def validate(cfg: Stage2Config, world: int | None = None) -> None:
    """Clear errors before any model loads: unknown reward/model, BP on a non-differentiable reward, K ∤ batch.

    ``world``: the launch's world size (None: ``sampling.expected_world``, the size the config is written for).
    """
    from rtdmd_bench.trainers.common import check_world, validate_model, validate_prompts, validate_rewards

    world = cfg.sampling.expected_world if world is None else world
    for name in filter(None, (cfg.model.name, cfg.model.generator_init, cfg.model.fake_init)):
        validate_model(name)
    validate_rewards(cfg.rewards, cfg.bp.rewards if cfg.bp.enabled else None, cfg.reward_options)
    validate_prompts(cfg.data, cfg.rewards)
    check_world(cfg.sampling.batch_size, cfg.sampling.k, world, cfg.sampling.expected_world)
    n_local = cfg.sampling.batch_size * cfg.sampling.batches_per_epoch
    if n_local % cfg.sampling.grad_accum:
        raise ValueError(f"sampling.grad_accum={cfg.sampling.grad_accum} must divide the local rollouts per epoch "
                         f"batch_size×batches_per_epoch = {n_local}")
    if cfg.bp.enabled and not bp_weights(cfg):
        raise ValueError("bp.enabled but none of the training rewards is differentiable; set bp.rewards")
    check_tilt(cfg)


def check_tilt(cfg: Stage2Config) -> None:
    """The calibrated mode (``aux.tilt_beta`` > 0) needs the DM term and no second source of tilt."""
    if cfg.aux.tilt_beta < 0:
        raise ValueError(f"aux.tilt_beta={cfg.aux.tilt_beta} must be >= 0 (0 = off)")
    if not 0 <= cfg.aux.tilt_momentum < 1:
        raise ValueError(f"aux.tilt_momentum={cfg.aux.tilt_momentum} must be in [0, 1)")
    fixes = [fix for fix, bad in (("aux.loss=ac_dmd", cfg.aux.loss == "none"), ("policy.enabled=false",
                                  cfg.policy.enabled), ("bp.enabled=false", cfg.bp.enabled)) if bad]
    if cfg.aux.tilt_beta > 0 and fixes:
        raise ValueError(f"aux.tilt_beta={cfg.aux.tilt_beta} (the calibrated tilt through the fake score) needs the "
                         f"DM term and no second tilt; set {', '.join(fixes)}")


def trained_steps(cfg: Stage2Config, seed: int, epoch: int, n_steps: int) -> tuple[list[int], list[int]]:
    """``(S, trained)``: PPO steps of the epoch and ``sorted(S ∪ {last})`` when an aux term exists (§4.4)."""
    p = cfg.policy
    stochastic = list(range(n_steps - 1))
    if not p.enabled:
        s = []
    else:
        s = select_train_steps(seed, epoch, p.range_start, p.range_end, p.num_train_steps) if p.step_selection \
            else stochastic
    aux = cfg.aux.loss != "none" or cfg.bp.enabled
    return s, sorted(set(s) | ({n_steps - 1} if aux else set()))


def generator_update(sess, cfg, traj, prompts, metas, keys, adv, selected, steps, bp_rewards) -> dict:
    """Sub-batches × trained steps, one backward each, one optimizer step at the end (§4.7).

    Per-term gradient norms (``grad_norm/term/{pg,kl,dm,bp}``) are measured on the first
    ``diagnostics.term_grad_subbatches`` sub-batches (``training.term_grads``).
    """
    from contextlib import nullcontext

    from rtdmd_bench.training.term_grads import TermGradMeter, graph_params, metric_key

    bb, e = sess.bb, sess.state.step
    n, n_sub, last = len(prompts), cfg.sampling.grad_accum, len(bb.sigmas) - 2
    perm = torch.randperm(n, generator=sess.rng.generator(e, "perm", sess.dist.rank))
    chunks = perm.chunk(n_sub)
    n_back, done, logs, ppo_logs, aux_logs = n_sub * len(steps), 0, {}, [], []
    n_meas = len(chunks) if cfg.diagnostics.term_grad_subbatches <= 0 else min(cfg.diagnostics.term_grad_subbatches,
                                                                                len(chunks))
    meter = TermGradMeter(scale=len(chunks) / n_meas)
    w_pg = (last / max(len(selected), 1)) if cfg.policy.subset_correction else 1.0  # (N−1)/|S|
    adv_clip = float("inf") if cfg.advantages.mode == "raw_loo" else cfg.advantages.adv_clip
    ema = sess.state.emas.get("generator")
    for b, chunk in enumerate(chunks):
        idx = chunk.tolist()
        ps, ms, ks = [prompts[i] for i in idx], [metas[i] for i in idx], [keys[i] for i in idx]
        sub = traj.select(chunk.to(traj.latents.device))
        with torch.no_grad():
            cond, uncond = bb.encode(ps), bb.encode_uncond(len(ps))
        with graph_params(sess.gen) if b < n_meas else nullcontext() as params:
            for j in steps:
                logp, mean, std, v = policy_logprob(bb, sess.gen, cond, sub, j, cfg.sampling.logprob)
                terms: dict[str, torch.Tensor] = {}
                if j in selected:
                    l_pg, m = clipped_policy_loss(logp, sub.log_probs[:, j], adv[chunk.to(adv.device)],
                                                  cfg.policy.clip_range, adv_clip)
                    terms["pg"], ppo_logs = w_pg * l_pg, ppo_logs + [m]
                    if cfg.policy.kl_beta > 0:
                        from rtdmd_bench.training.lora import adapters_disabled

                        with torch.no_grad(), adapters_disabled(parallel.unwrap(sess.gen)):
                            _, ref_mean, _, _ = policy_logprob(bb, sess.gen, cond, sub, j, cfg.sampling.logprob)
                        kl = kl_to_reference(mean, ref_mean, std)
                        terms["kl"], logs = cfg.policy.kl_beta * kl, {**logs, "kl": kl.detach()}
                if j == last:
                    last_terms, step_logs = last_step_loss(sess, cfg, bp_rewards, cond, uncond, sub, j, v, mean, ps,
                                                           ms, ks)
                    terms.update(last_terms)
                    aux_logs.append(step_logs)
                if params is not None:
                    meter.add({k: t / n_back for k, t in terms.items()}, params)
                loss = sum(terms.values(), torch.zeros((), device=bb.device))
                done += 1
                loop.backward(loss / n_back, sess.gen, sync=done == n_back)
        if ema is not None and cfg.ema.reference_schedule:  # P7: EMA called per sub-batch with the pre-step counter
            ema.step(named_trainable(sess.gen), e + (1 if done == n_back else 0))
            # (the reference's optimizer step happens inside the last sub-batch, before this call)
    norm = loop.optimizer_step(sess.state.optimizers["generator"], sess.state.schedulers["generator"],
                               sess.state.params("generator"), cfg.generator_optim.max_grad_norm)
    if ema is not None and not cfg.ema.reference_schedule:
        ema.step(named_trainable(sess.gen), e)
    for k in ("clip_frac", "ratio_mean", "approx_kl"):
        if ppo_logs:
            logs[k] = torch.stack([m[k] for m in ppo_logs]).mean()
    if ppo_logs:
        logs["ratio_min"] = torch.stack([m["ratio_min"] for m in ppo_logs]).min()
        logs["ratio_max"] = torch.stack([m["ratio_max"] for m in ppo_logs]).max()
    for k in dict.fromkeys(k for a in aux_logs for k in a):  # over sub-batches: means (loss_dmd, loss_bp, ..), mins
        vals = torch.stack([torch.as_tensor(a[k], dtype=torch.float32) for a in aux_logs if k in a])
        logs[k] = vals.min() if k.endswith("_min") else vals.mean()
    term_norms = meter.norms(lambda t: parallel.all_reduce_mean(t, sess.dist))
    return {**logs, "grad_norm/generator": norm, **{metric_key(k): v for k, v in term_norms.items()}}


@dataclass
class Stage2Run:
    """A built stage-2 run: the session, the sampler, the resolved reward modules ``{name: (module, w)}`` and the
    config."""

    sess: Session
    sampler: KRepeatSampler
    rewards: dict[str, tuple[Any, float]]
    bp_rewards: dict[str, tuple[Any, float]]
    cfg: Stage2Config
    guard: Any = None  # training.term_grads.DeadTermGuard


def step(run: Stage2Run) -> dict:
    """One epoch (§4.8 pseudo-code)."""
    sess, cfg = run.sess, run.cfg
    n_steps = len(sess.bb.sigmas) - 1
    selected, steps = trained_steps(cfg, cfg.train.seed, sess.state.step, n_steps)
    traj, prompts, metas, keys, scores = rollout(sess, cfg, run.sampler, run.rewards, selected)
    metrics: dict[str, Any] = {f"reward/{k}": parallel.all_reduce_mean(v.mean(), sess.dist) for k, v in scores.items()}
    if sess.fake is not None:
        with sess.timer.phase("fake_update"):
            metrics.update(fake_update(sess, cfg, traj, prompts, keys, scores))
    adv, adv_metrics = advantages(sess, cfg, prompts, scores)
    metrics.update(adv_metrics)
    keep = filter_zero_advantage(adv, cfg.sampling.grad_accum,
                                 sess.rng.generator(sess.state.step, "adv_filter", sess.dist.rank))
    if len(keep) < len(prompts):  # §4.5 (rare after re-standardisation); the fake update saw every rollout (P14)
        traj, adv, idx = traj.select(keep.to(traj.latents.device)), adv[keep.to(adv.device)], keep.tolist()
        prompts, metas, keys = [prompts[i] for i in idx], [metas[i] for i in idx], [keys[i] for i in idx]
    metrics["adv/kept"] = float(len(keep))
    metrics.update({"adv/mean": adv.mean(), "adv/std": adv.std(unbiased=False), "adv/abs_max": adv.abs().max(),
                    "selected_steps": sum(10**i * s for i, s in enumerate(selected))})
    with sess.timer.phase("generator_update"):
        metrics.update(generator_update(sess, cfg, traj, prompts, metas, keys, adv, selected, steps, run.bp_rewards))
    metrics.update(beta_meter(cfg, sess.bb, metrics, selected))
    check(run.guard, sess.state, metrics)  # a configured term whose gradient stays exactly 0 stops the run here
    return {**metrics, **sess.timer.pop()}


def build(cfg: Stage2Config, cfg_dict: dict, *, weights: str | None, out: str, resume: bool = False,
          device: str | None = None, world: InMemoryWorld | None = None) -> Stage2Run:
    """Session, sampler and rewards of a run.

    ``world`` replaces the registry backbone, prompts (empty metadata) and rewards by in-memory objects (the toy):
    its reward modules are taken as differentiable, so BP uses ``bp.rewards`` or all of ``cfg.rewards``.
    """
    from rtdmd_bench.trainers.common import build_backbone, build_rewards, check_prompt_metadata

    from rtdmd_bench.training import session

    if world is None:
        validate(cfg, parallel.world_size())
        bp_w = bp_weights(cfg)
    else:
        check_tilt(cfg)
        bp_w = (dict(cfg.bp.rewards) if cfg.bp.rewards is not None else dict(cfg.rewards)) if cfg.bp.enabled else {}
    prompts, meta = session.run_prompts(cfg.data, world.prompts if world else None)
    if world is None:
        check_prompt_metadata(cfg.data.prompts, meta, cfg.rewards)
    cfg_dict = {**cfg_dict, "bp": {**cfg_dict.get("bp", {}), "rewards": bp_w}}  # the resolved BP mapping
    dist = parallel.init(device)
    bb = world.backbone if world else build_backbone(cfg.model, weights, dist.device)
    need_fake = cfg.aux.loss != "none"
    sess = session.start(bb=bb, cfg_dict=cfg_dict, run=cfg.train, lora_cfg=cfg.lora, gen_optim=cfg.generator_optim,
                         fake_optim=cfg.fake_optim if need_fake else None, ema_cfg=cfg.ema, out=out, prompts=prompts,
                         metadata=meta, resume=resume, dist=dist,
                         rng_block=cfg.sampling.batch_size * dist.world if cfg.train.batched_rng else 0,
                         prompt_source=None if world else cfg.data.prompts)
    all_rewards = dict(world.rewards) if world else build_rewards({**cfg.rewards, **bp_w}, weights, dist.device,
                                                                  cfg.reward_options)
    sampler = KRepeatSampler(len(prompts), cfg.sampling.batch_size, cfg.sampling.k, dist.world, dist.rank,
                             cfg.train.seed, cfg.sampling.batches_per_epoch)
    from rtdmd_bench.trainers.diagnostics import ALIVE_KEY, stage2_guard

    return Stage2Run(sess, sampler, {k: (all_rewards[k][0], w) for k, w in cfg.rewards.items()},
                     {k: (all_rewards[k][0], w) for k, w in bp_w.items()}, cfg, guard=stage2_guard(cfg, bp_w, sess.state.extra.get(ALIVE_KEY, ())))


def record(run: Stage2Run) -> dict:
    """``training.json`` of the export: the advantage rewards, the resolved BP rewards with their weights and
    options, and the training prompts (source, split, hashes file; ``session.prompts_record``)."""
    from rtdmd_bench.training import lora, session

    trainer = type(run.cfg).__name__.removesuffix("Config").lower()  # stage2 | grpo
    return lora.training_record(2, trainer, {k: w for k, (_, w) in run.rewards.items()}, run.cfg.model.name,
                                run.sess.state.step, bp_rewards={k: w for k, (_, w) in run.bp_rewards.items()},
                                reward_options={k: dict(v) for k, v in run.cfg.reward_options.items()},
                                prompts=session.prompts_record(run.sess, run.cfg.data))


RECIPE = Recipe(config=Stage2Config, validate=validate, build=build, step=step, record=record)
