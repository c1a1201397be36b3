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

from rtdmd_bench.losses.ambient import consistency_timesteps, renoise_timesteps
from rtdmd_bench.losses.policy import clipped_policy_loss, group_advantages
from rtdmd_bench.losses.reward_bp import differentiable_subset, reward_bp_loss
from rtdmd_bench.training import loop, parallel
from rtdmd_bench.training.config import (
    ConsistencySection,
    DataSection,
    EMASection,
    EvalSection,
    LoraSection,
    ModelSection,
    OptimSection,
    RenoiseSection,
    RunSection,
)
from rtdmd_bench.training.ema import named_trainable
from rtdmd_bench.training.samplers import (
    KRepeatSampler,
    check_k_repeat,
    select_train_steps,
    shared_step_noise,
)
from rtdmd_bench.training.session import Session
from rtdmd_bench.training.terms import (
    Trajectory,
    dmd_generator_term,
    fake_score_term,
    kl_to_reference,
    levels,
    policy_logprob,
    rollout_with_logprob,
)


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
    global_std: bool = True
    eps: float = 1e-4
    adv_clip: float = 5.0


@dataclass(frozen=True)
class PolicySection:
    """Clipped policy loss (eq. 4.2), SubGRPO step selection (§4.4), optional KL to the initial policy."""

    clip_range: tuple[float, float] = (1e-5, 1e-5)
    kl_beta: float = 0.0
    step_selection: bool = True
    range_start: int = 0
    range_end: int = 2
    num_train_steps: int = 2


@dataclass(frozen=True)
class AuxSection:
    """Last-step distribution matching (§4.7 item 1) and the fake score that tracks the generator (§4.6)."""

    loss: Literal["ac_dmd", "dmd", "none"] = "ac_dmd"
    weight: float = 0.001
    real_guidance_scale: float = 4.5
    gradient_normalization: bool = True
    fake_batch_size: int = 8
    consistency: ConsistencySection = field(default_factory=ConsistencySection)


@dataclass(frozen=True)
class BPSection:
    """Reward back-propagation on the deterministic last step; ``rewards: null`` = differentiable training rewards."""

    enabled: bool = True
    rewards: dict[str, float] | None = None
    margin: float = 3.0
    scale: float = 1e-4
    only_deterministic: bool = True


@dataclass(frozen=True)
class Stage2Config:
    """Root config of ``rtdmd-bench train --stage 2``."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: RunSection = field(default_factory=RunSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)
    rewards: dict[str, float] = field(default_factory=lambda: {"saturation": 1.0})
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


def bp_weights(cfg: Stage2Config) -> dict[str, float]:
    """Rewards used for BP: explicit ``bp.rewards`` or the differentiable subset of ``rewards`` (P15)."""
    if not cfg.bp.enabled:
        return {}
    return dict(cfg.bp.rewards) if cfg.bp.rewards is not None else differentiable_subset(cfg.rewards)[0]


def validate(cfg: Stage2Config, world: int) -> None:
    """Clear errors before any model loads: unknown reward/model, BP on a non-differentiable reward, K ∤ batch."""
    from trainers.common import validate_model, validate_rewards

    for name in filter(None, (cfg.model.name, cfg.model.generator_init, cfg.model.fake_init)):
        validate_model(name)
    validate_rewards(cfg.rewards, cfg.bp.rewards if cfg.bp.enabled else None)
    check_k_repeat(cfg.sampling.batch_size, cfg.sampling.k, world)
    n_local = cfg.sampling.batch_size * cfg.sampling.batches_per_epoch
    if n_local % cfg.sampling.grad_accum:
        raise ValueError(f"sampling.grad_accum={cfg.sampling.grad_accum} must divide the local rollouts per epoch "
                         f"batch_size×batches_per_epoch = {n_local}")
    if cfg.bp.enabled and not bp_weights(cfg):
        raise ValueError("bp.enabled but none of the training rewards is differentiable; set bp.rewards")


def trained_steps(cfg: Stage2Config, seed: int, epoch: int, n_steps: int) -> tuple[list[int], list[int]]:
    """``(S, trained)``: PPO steps of the epoch and ``sorted(S ∪ {last})`` when an aux term exists (§4.4)."""
    p = cfg.policy
    stochastic = list(range(n_steps - 1))
    s = select_train_steps(seed, epoch, p.range_start, p.range_end, p.num_train_steps) if p.step_selection else stochastic
    aux = cfg.aux.loss != "none" or cfg.bp.enabled
    return s, sorted(set(s) | ({n_steps - 1} if aux else set()))


def rollout(sess: Session, cfg: Stage2Config, sampler: KRepeatSampler, rewards: dict, selected: list[int]):
    """Rollouts of one epoch and their rewards: ``(traj, prompts, metadata, keys, scores {name: [N_local]})``."""
    bb, e, rng = sess.bb, sess.state.step, sess.rng
    trajs, prompts, metas, keys, scores = [], [], [], [], {k: [] for k in rewards}
    for i in range(cfg.sampling.batches_per_epoch):
        idx, ks = sampler.indices(e, i)
        ps, ms = [sess.prompts[j] for j in idx], [sess.metadata[j] for j in idx]

        def noise_fn(k: int, ps=ps, ks=ks) -> torch.Tensor:
            shared = shared_step_noise(ps, k, e, bb.latent_shape, selected)
            return rng.randn(e, f"z{k}", ks, bb.latent_shape, bb.device) if shared is None else shared.to(bb.device)

        with sess.timer.phase("rollout"):
            cond = bb.encode(ps)
            x = rng.randn(e, "x", ks, bb.latent_shape, bb.device)
            traj = rollout_with_logprob(bb, sess.gen, cond, x, noise_fn, cfg.sampling.logprob)
        with sess.timer.phase("reward"), torch.no_grad():
            images = bb.decode(traj.final)
            for name, (module, _) in rewards.items():
                scores[name].append(module(images, ps, ms).scores.float())
        trajs.append(traj)
        prompts += ps
        metas += ms
        keys += ks
    traj = Trajectory(*(torch.cat([getattr(t, f) for t in trajs]) for f in ("latents", "next_latents", "log_probs")))
    return traj, prompts, metas, keys, {k: torch.cat(v) for k, v in scores.items()}


def fake_update(sess: Session, cfg: Stage2Config, traj: Trajectory, prompts: list[str], keys: list[int]) -> dict:
    """One AdamW step of the fake score on all local final outputs, s = 0 (§4.6, P14)."""
    bb, e, rng, n = sess.bb, sess.state.step, sess.rng, len(prompts)
    c = cfg.aux.consistency
    cons = c.enabled and c.weight > 0
    total, logs = 0.0, {}
    bounds = list(range(0, n, cfg.aux.fake_batch_size))
    for ci, lo in enumerate(bounds):
        sl = slice(lo, lo + cfg.aux.fake_batch_size)
        ks, x_s = keys[sl], traj.final[sl]
        s = torch.zeros(len(ks), device=bb.device)
        with torch.no_grad():
            cond = bb.encode(prompts[sl])
        r = cfg.renoise
        t_r = renoise_timesteps(s, rng.rand(e, "fake/t", ks, bb.device), r.timestep_offset, r.end_timestep,
                                (r.min_step, r.max_step))
        eps = rng.randn(e, "fake/eps", ks, bb.latent_shape, bb.device)
        t_p = consistency_timesteps(t_r, rng.rand(e, "fake/delta", ks, bb.device), c.epsilon_timestep) if cons else None
        zp = tuple(rng.randn(e, f"fake/cz{i}", ks, bb.latent_shape, bb.device) for i in (1, 2)) if cons else None
        loss, logs = fake_score_term(bb, sess.fake, cond, x_s, s, t_r, eps, scale_out=r.scale_out,
                                     weight_clamp=r.weight_clamp, consistency_weight=c.weight if cons else 0.0,
                                     t_prime_r=t_p, z_pair=zp, two_sample=c.two_sample)
        loop.backward(loss * (len(ks) / n), sess.fake, sync=ci == len(bounds) - 1)
        total += loss.detach() * (len(ks) / n)
    norm = loop.optimizer_step(sess.state.optimizers["fake"], sess.state.schedulers["fake"],
                               sess.state.params("fake"), cfg.fake_optim.max_grad_norm)
    return {"loss_fake": total, **logs, "grad_norm/fake": norm}


def advantages(sess: Session, cfg: Stage2Config, prompts: list[str], scores: dict) -> torch.Tensor:
    """Global group advantages (eq. 4.1) over every rank's rollouts; returns this rank's slice ``[N_local]``."""
    dist = sess.dist
    all_scores = {k: parallel.all_gather_tensor(v, dist) for k, v in scores.items()}
    all_prompts = [p for ps in parallel.all_gather_object(prompts, dist) for p in ps]
    ids = {p: i for i, p in enumerate(dict.fromkeys(all_prompts))}
    group_ids = torch.tensor([ids[p] for p in all_prompts], device=sess.bb.device)
    a = group_advantages(all_scores, cfg.rewards, group_ids, cfg.advantages.global_std, cfg.advantages.eps)
    n = len(prompts)
    return a[dist.rank * n:(dist.rank + 1) * n]


def _last_step_loss(sess, cfg, bp_rewards, cond, uncond, traj, j, v, mean, ps, ms, ks) -> tuple[Any, dict]:
    """w_dm·DMD on the final x̂0 (= CPS mean at σ'=0) plus the BP hinge (§4.7 items 1-2)."""
    bb, e, rng = sess.bb, sess.state.step, sess.rng
    loss, logs = 0.0, {}
    if cfg.aux.loss != "none":
        s = torch.zeros(len(ks), device=bb.device)
        r = cfg.renoise
        t_r = renoise_timesteps(s, rng.rand(e, "aux/t", ks, bb.device), r.timestep_offset, r.end_timestep,
                                (r.min_step, r.max_step))
        eps = rng.randn(e, "aux/eps", ks, bb.latent_shape, bb.device)
        l_dm, logs = dmd_generator_term(bb, sess.teacher, sess.fake, cond, uncond, mean, s, t_r, eps,
                                        torch.zeros_like(eps), cfg.aux.real_guidance_scale,
                                        cfg.aux.gradient_normalization)
        loss = cfg.aux.weight * l_dm
    if bp_rewards:
        with sess.timer.phase("reward_bp"):
            sig = levels(bb.sigmas[j], len(ks), bb.device)
            l_bp, bp_logs = reward_bp_loss(traj.latents[:, j], v, sig, float(bb.sigmas[j + 1]), bb.decode, bp_rewards,
                                           ps, ms, cfg.bp.margin, cfg.bp.scale, cfg.bp.only_deterministic)
        loss, logs = loss + l_bp, {**logs, "loss_bp": l_bp.detach(), **bp_logs}
    return loss, logs


def generator_update(sess, cfg, traj, prompts, metas, keys, adv, selected, steps, bp_rewards) -> dict:
    """Sub-batches × trained steps, one backward each, one optimizer step at the end (§4.7)."""
    bb, e = sess.bb, sess.state.step
    n, n_sub, last = len(prompts), cfg.sampling.grad_accum, len(bb.sigmas) - 2
    perm = torch.randperm(n, generator=sess.rng.generator(e, "perm", sess.dist.rank))
    n_back, done, logs, ppo_logs = n_sub * len(steps), 0, {}, []
    ema = sess.state.emas.get("generator")
    for chunk in perm.chunk(n_sub):
        idx = chunk.tolist()
        ps, ms, ks = [prompts[i] for i in idx], [metas[i] for i in idx], [keys[i] for i in idx]
        sub = traj.select(chunk.to(traj.latents.device))
        with torch.no_grad():
            cond, uncond = bb.encode(ps), bb.encode_uncond(len(ps))
        for j in steps:
            logp, mean, std, v = policy_logprob(bb, sess.gen, cond, sub, j, cfg.sampling.logprob)
            loss = torch.zeros((), device=bb.device)
            if j in selected:
                l_pg, m = clipped_policy_loss(logp, sub.log_probs[:, j], adv[chunk.to(adv.device)],
                                              cfg.policy.clip_range, cfg.advantages.adv_clip)
                loss, ppo_logs = loss + l_pg, ppo_logs + [m]
                if cfg.policy.kl_beta > 0:
                    from rtdmd_bench.training.lora import adapters_disabled

                    with torch.no_grad(), adapters_disabled(parallel.unwrap(sess.gen)):
                        _, ref_mean, _, _ = policy_logprob(bb, sess.gen, cond, sub, j, cfg.sampling.logprob)
                    kl = kl_to_reference(mean, ref_mean, std)
                    loss, logs = loss + cfg.policy.kl_beta * kl, {**logs, "kl": kl.detach()}
            if j == last:
                l_aux, aux_logs = _last_step_loss(sess, cfg, bp_rewards, cond, uncond, sub, j, v, mean, ps, ms, ks)
                loss, logs = loss + l_aux, {**logs, **aux_logs}
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
    return {**logs, "grad_norm/generator": norm}


def step(sess: Session, cfg: Stage2Config, sampler: KRepeatSampler, rewards: dict, bp_rewards: dict) -> dict:
    """One epoch (§4.8 pseudo-code)."""
    n_steps = len(sess.bb.sigmas) - 1
    selected, steps = trained_steps(cfg, cfg.train.seed, sess.state.step, n_steps)
    traj, prompts, metas, keys, scores = rollout(sess, cfg, sampler, rewards, selected)
    metrics: dict[str, Any] = {f"reward/{k}": parallel.all_reduce_mean(v.mean(), sess.dist) for k, v in scores.items()}
    if sess.fake is not None:
        with sess.timer.phase("fake_update"):
            metrics.update(fake_update(sess, cfg, traj, prompts, keys))
    adv = advantages(sess, cfg, prompts, scores)
    metrics.update({"adv/mean": adv.mean(), "adv/std": adv.std(unbiased=False), "adv/abs_max": adv.abs().max(),
                    "selected_steps": sum(10**i * s for i, s in enumerate(selected))})
    with sess.timer.phase("generator_update"):
        metrics.update(generator_update(sess, cfg, traj, prompts, metas, keys, adv, selected, steps, bp_rewards))
    return {**metrics, **sess.timer.pop()}


def main(cfg: Stage2Config, cfg_dict: dict, *, weights: str | None, out: str, resume: bool = False,
         device: str | None = None, backbone: Any = None, rewards: dict | None = None) -> Session:
    """Build, train ``cfg.train.steps`` epochs, export the LoRA. ``backbone``/``rewards`` override the registry
    ones (toy world): ``rewards = {name: (callable, weight)}`` for advantages; BP uses ``bp.rewards`` names of it."""
    from rtdmd_bench.training import session
    from rtdmd_bench.training.periodic_eval import maybe_evaluate
    from trainers.common import build_backbone, build_rewards, world_size

    if backbone is None:
        validate(cfg, world_size())
    prompts, meta = session.load_prompts(cfg.data.prompts, cfg.data.limit)
    dist = parallel.init(device)
    bb = backbone or build_backbone(cfg.model, weights, dist.device)
    need_fake = cfg.aux.loss != "none"
    sess = session.start(bb=bb, cfg_dict=cfg_dict, run=cfg.train, lora_cfg=cfg.lora, gen_optim=cfg.generator_optim,
                         fake_optim=cfg.fake_optim if need_fake else None, ema_cfg=cfg.ema, out=out, prompts=prompts,
                         metadata=meta, resume=resume, dist=dist)
    if rewards is None:
        bp_w = bp_weights(cfg)
        all_rewards = build_rewards({**cfg.rewards, **bp_w}, weights, dist.device)
    else:  # caller-supplied (toy) rewards are taken as differentiable: BP uses bp.rewards or all of cfg.rewards
        bp_w = (dict(cfg.bp.rewards) if cfg.bp.rewards is not None else dict(cfg.rewards)) if cfg.bp.enabled else {}
        all_rewards = rewards
    train_rewards = {k: (all_rewards[k][0], w) for k, w in cfg.rewards.items()}
    bp_rewards = {k: (all_rewards[k][0], w) for k, w in bp_w.items()}
    sampler = KRepeatSampler(len(prompts), cfg.sampling.batch_size, cfg.sampling.k, dist.world, dist.rank,
                             cfg.train.seed, cfg.sampling.batches_per_epoch)
    loop.run(sess.state, lambda _s: step(sess, cfg, sampler, train_rewards, bp_rewards), steps=cfg.train.steps,
             out=out, dist=dist, logger=sess.logger, cfg_hash=sess.cfg_hash, save_every=cfg.train.save_every,
             on_step_end=lambda _s: maybe_evaluate(sess, cfg.eval, weights))
    session.export(sess, cfg.lora)
    sess.logger.close()
    return sess
