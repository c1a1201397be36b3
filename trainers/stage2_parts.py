"""Stage-2 (RTDMD, ALGORITHM.md §4) parts of the ``stage2_rtdmd`` recipe (and so of ``grpo``): each composes the pure
losses (``rtdmd_bench.losses``), the rollout core and the loss terms (``training.terms``) for one unit of the epoch:

* ``rollout``            K-repeat rollouts with log-probs and their rewards (§2.4, §4.3-4.5)
* ``fake_update``        one fake-score step on the final samples, s = 0 (§4.6; ``training.fake_score``)
* ``advantages``         eq. 4.1 (``standardized``) or the exact-KL ``raw_loo`` baseline (§5)
* ``last_step_loss``     w_dm·DM + reward BP on the deterministic last step (§4.7 items 1-2)

``cfg`` is the recipe's ``Stage2Config`` (typed ``Any`` to avoid a cycle with ``stage2_rtdmd``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rtdmd_bench import parallel
from rtdmd_bench.flow import sigma_batch, timestep_to_sigma
from rtdmd_bench.losses.dmd import kl_time_weight
from rtdmd_bench.losses.policy import (
    advantage_shares,
    group_advantages,
    group_spread,
    leave_one_out_advantages,
    reward_advantages,
)
from rtdmd_bench.losses.reward_bp import reward_bp_loss
from rtdmd_bench.losses.tilt import (
    advantage_scale,
    effective_beta_estimate,
    policy_gradient_coefficient,
    state_beta_estimate,
    tilt_effective_sample_size,
    tilt_weights,
    update_log_normalizer,
)
from rtdmd_bench.training.fake_score import fake_score_step, final_sample_batches, renoise_draws
from rtdmd_bench.training.samplers import KRepeatSampler, shared_step_noise
from rtdmd_bench.training.session import Session
from rtdmd_bench.training.terms import (
    Trajectory,
    chain_x0,
    dmd_generator_term,
    rollout_with_logprob,
)


def rollout(sess: Session, cfg: Any, sampler: KRepeatSampler, rewards: dict, selected: list[int]):
    """Rollouts of one epoch and their rewards: ``(traj, prompts, metadata, keys, scores {name: [N_local]})``.

    Stochastic steps outside ``selected`` share their noise within a prompt group when the policy gradient is on
    (§2.4: it removes their share of the within-group reward variance); without a policy term every step draws
    fresh per-sample noise (sharing would only correlate the samples the DM/BP terms average over).
    """
    bb, e, rng = sess.bb, sess.state.step, sess.rng
    trajs, prompts, metas, keys, scores = [], [], [], [], {k: [] for k in rewards}
    for i in range(cfg.sampling.batches_per_epoch):
        idx, ks = sampler.indices(e, i)
        ps, ms = [sess.prompts[j] for j in idx], [sess.metadata[j] for j in idx]

        def noise_fn(k: int, ps=ps, ks=ks) -> Tensor:
            shared = shared_step_noise(ps, k, e, bb.latent_shape, selected) if cfg.policy.enabled else None
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


def fake_update(sess: Session, cfg: Any, traj: Trajectory, prompts: list[str], keys: list[int],
                scores: dict[str, Tensor]) -> dict:
    """One AdamW step of the fake score on all local final outputs, s = 0, in ``aux.fake_batch_size`` chunks
    (§4.6, P14). With ``aux.tilt_beta`` > 0 each output is weighted by ``losses.tilt.tilt_weights`` of its reward
    ``R = Σ_k w_k r_k`` over the running normaliser of every rank's rollouts (the calibrated mode)."""
    weights, logs = None, {}
    if cfg.aux.tilt_beta > 0:
        r = sum(float(w) * scores[k].float() for k, w in cfg.rewards.items())
        all_r = parallel.all_gather_tensor(r, sess.dist)
        extra = sess.state.extra  # the running normaliser lives in the checkpointed train state
        extra["tilt_log_z"] = update_log_normalizer(extra.get("tilt_log_z"), all_r, cfg.aux.tilt_beta,
                                                    cfg.aux.tilt_momentum)
        all_w = tilt_weights(all_r, cfg.aux.tilt_beta, extra["tilt_log_z"])
        n, rank = len(keys), sess.dist.rank
        weights = all_w[rank * n:(rank + 1) * n].to(traj.final.device)
        logs = {"tilt/ess_frac": tilt_effective_sample_size(all_w) / all_w.numel(), "tilt/w_max": all_w.max(),
                "tilt/w_mean": all_w.mean()}
    batches = final_sample_batches(sess, traj.final, prompts, keys, cfg.aux.fake_batch_size, weights)
    return {**fake_score_step(sess, batches, cfg.renoise, cfg.aux.consistency, cfg.fake_optim.max_grad_norm,
                              measured_batches=cfg.diagnostics.term_grad_subbatches), **logs}


def advantages(sess: Session, cfg: Any, prompts: list[str], scores: dict) -> tuple[Tensor, dict]:
    """Global group advantages over every rank's rollouts: ``(this rank's slice [N_local], metrics)``.

    ``advantages.mode``: ``standardized`` = eq. 4.1 (per-reward group mean / global std, re-standardised);
    ``raw_loo`` = ``leave_one_out_advantages`` with ``advantages.beta``. Metrics per reward k: ``reward_spread/k``
    (mean within-group std: 0 means k cannot rank a prompt's images) and ``adv/share/k`` (k's share of the
    advantages before re-standardisation: which reward drives the policy gradient).
    """
    dist = sess.dist
    all_scores = {k: parallel.all_gather_tensor(v, dist) for k, v in scores.items()}
    all_prompts = [p for ps in parallel.all_gather_object(prompts, dist) for p in ps]
    ids = {p: i for i, p in enumerate(dict.fromkeys(all_prompts))}
    group_ids = torch.tensor([ids[p] for p in all_prompts], device=sess.bb.device)
    a_cfg = cfg.advantages
    if a_cfg.mode == "raw_loo":
        a = leave_one_out_advantages(all_scores, cfg.rewards, group_ids, a_cfg.beta)
        parts = reward_advantages(all_scores, cfg.rewards, group_ids, standardize=False)
    else:
        a = group_advantages(all_scores, cfg.rewards, group_ids, a_cfg.global_std, a_cfg.eps)
        parts = reward_advantages(all_scores, cfg.rewards, group_ids, a_cfg.global_std, a_cfg.eps)
    metrics = {f"reward_spread/{k}": group_spread(all_scores[k], group_ids) for k in cfg.rewards}
    r = sum(float(w) * all_scores[k].float() for k, w in cfg.rewards.items())
    metrics["adv/scale"] = advantage_scale(a, r, group_ids)  # advantage units per unit of R (the β-meter)
    metrics.update({f"adv/share/{k}": v for k, v in advantage_shares(parts).items()})
    n = len(prompts)
    return a[dist.rank * n:(dist.rank + 1) * n], metrics


def last_step_loss(sess: Session, cfg: Any, bp_rewards: dict, cond: Any, uncond: Any, traj: Trajectory, j: int,
                   v: Tensor, mean: Tensor, ps: list[str], ms: list[dict], ks: list[int]) -> tuple[dict, dict]:
    """The deterministic last step's terms ``{"dm": aux.weight·DM, "bp": BP hinge}`` (§4.7 items 1-2) and metrics.

    DM: classic DMD at s = 0 (the CPS projection to 0 is x̂0, no noise) with ``aux.gradient_normalization`` and
    optional ``aux.time_weight=kl``; on ``mean`` = the one-step x̂0 (``aux.path=last_step``, paper) or on
    ``chain_x0`` (``aux.path=chain``). BP: ``reward_bp_loss`` on the one-step x̂0 from the stored ``x_{N−1}``.
    """
    bb = sess.bb
    terms, logs = {}, {}
    if cfg.aux.loss != "none":
        x0 = chain_x0(bb, sess.gen, cond, traj) if cfg.aux.path == "chain" else mean
        s = torch.zeros(len(ks), device=bb.device)
        t_r, eps = renoise_draws(sess, cfg.renoise, s, ks, "aux")
        w = kl_time_weight(timestep_to_sigma(t_r), int(x0[0].numel())) if cfg.aux.time_weight == "kl" else None
        l_dm, logs = dmd_generator_term(bb, sess.teacher, sess.fake, cond, uncond, x0, s, t_r, eps,
                                        torch.zeros_like(eps), cfg.aux.real_guidance_scale,
                                        cfg.aux.gradient_normalization, sample_weight=w, kl_coefficient=True)
        logs["beta_meter/c_dm"] = cfg.aux.weight * logs.pop("dm/kl_coef_unit")
        terms["dm"] = cfg.aux.weight * l_dm
    if bp_rewards:
        with sess.timer.phase("reward_bp"):
            sig = sigma_batch(bb.sigmas[j], len(ks), bb.device)
            l_bp, bp_logs = reward_bp_loss(traj.latents[:, j], v, sig, float(bb.sigmas[j + 1]), bb.decode, bp_rewards,
                                           ps, ms, cfg.bp.margin, cfg.bp.scale, cfg.bp.only_deterministic,
                                           bp_batch_size=cfg.bp.batch_size)
        terms["bp"] = l_bp
        logs = {**logs, "loss_bp": l_bp.detach(), **bp_logs}
    return terms, logs


def beta_meter(cfg: Any, bb: Any, metrics: dict, selected: list[int]) -> dict:
    """The run's effective β this epoch (``losses.tilt`` eq. M.1) from the epoch's metrics: ``adv/scale``,
    ``beta_meter/c_dm``, ``bp/hinge_active`` and the per-term gradient norms ``grad_norm/term/{pg,bp}``.

    Returns ``beta_meter/{update, state, c_pg, c_bp}`` (eqs. M.1 and M.2; β in units of 1/R, R = the
    ``rewards``-weighted raw scores).
    """
    from rtdmd_bench.sampling import cps_std
    from rtdmd_bench.training.metrics import to_float

    def get(key: str) -> float:
        return to_float(metrics.get(key, 0.0)) or 0.0

    d = float(torch.Size(bb.latent_shape).numel())
    rho = [float(cps_std(float(s), bb.eta)) for s in bb.sigmas[1:-1]]  # the N−1 stochastic steps
    factors = [2 * r * r / d if cfg.sampling.logprob == "simplified" else 1.0 for r in rho]
    c_pg = policy_gradient_coefficient(get("adv/scale"), cfg.sampling.k, len(selected), factors,
                                       cfg.policy.subset_correction) if cfg.policy.enabled else 0.0
    c_bp = cfg.bp.scale * get("bp/hinge_active") if cfg.bp.enabled else 0.0
    c_dm, g_pg, g_bp = get("beta_meter/c_dm"), get("grad_norm/term/pg"), get("grad_norm/term/bp")
    return {"beta_meter/update": effective_beta_estimate(c_dm, c_pg, c_bp, g_pg, g_bp, cfg.aux.tilt_beta),
            "beta_meter/state": state_beta_estimate(c_dm, get("grad_norm/term/dm"), c_pg, c_bp, g_pg, g_bp),
            "beta_meter/c_pg": c_pg, "beta_meter/c_bp": c_bp}
