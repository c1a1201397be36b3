"""The fake-score update shared by every recipe (ALGORITHM.md §3.4-3.5 in stage 1, §4.6 in stage 2) and the
renoising draws it shares with the generator's DM term.

Stage 1 calls ``fake_score_step`` on one fresh random-stop rollout (levels ``s`` of the stopped step); stage 2 on
all of an epoch's final samples (``s = 0``) in chunks. All randomness comes from the session's ``SampleRNG``
(streams ``<stream>/t``, ``<stream>/eps``, ``<stream>/delta``, ``<stream>/cz1``, ``<stream>/cz2``), so the draws
of a sample depend only on its global key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rtdmd_bench.losses.ambient import consistency_timesteps, renoise_timesteps
from rtdmd_bench.training import loop
from rtdmd_bench.training.config import ConsistencySection, RenoiseSection
from rtdmd_bench.training.session import Session
from rtdmd_bench.training.terms import fake_score_term


@dataclass
class FakeBatch:
    """Samples the fake score learns from: ``x_s [B, ...]`` at levels ``s [B]``, their text ``cond`` and keys;
    optional per-sample loss weights ``weight [B]`` (the calibrated tilt)."""

    cond: Any
    x_s: Tensor
    s: Tensor
    keys: Sequence[int]
    weight: Tensor | None = None


def renoise_draws(sess: Session, renoise: RenoiseSection, s: Tensor, keys: Sequence[int],
                  stream: str) -> tuple[Tensor, Tensor]:
    """``(t_r [B], ε' [B, ...])`` for samples at levels ``s``: ``t_r ~ U[1000s + offset, end]`` clamped (§3.3)."""
    bb, step = sess.bb, sess.state.step
    t_r = renoise_timesteps(s, sess.rng.rand(step, f"{stream}/t", keys, bb.device), renoise.timestep_offset,
                            renoise.end_timestep, (renoise.min_step, renoise.max_step))
    return t_r, sess.rng.randn(step, f"{stream}/eps", keys, bb.latent_shape, bb.device)


def fake_score_step(sess: Session, batches: Sequence[FakeBatch], renoise: RenoiseSection,
                    consistency: ConsistencySection, max_grad_norm: float, stream: str = "fake",
                    measured_batches: int = 1) -> dict[str, Any]:
    """One AdamW step of the fake score on ``batches``: ``Σ_c (B_c/N)·(L_ac + w_c·L_cons)`` (eq. 3.2, 3.4).

    One backward per batch (gradient reduction deferred to the last), then one clipped optimizer step. The
    gradients of the two terms are measured separately on the first ``measured_batches`` batches (0 = all;
    ``training.term_grads``).

    Returns:
        ``loss_fake`` (the weighted total), the last batch's term metrics, ``grad_norm/fake`` (pre-clip),
        ``grad_norm/term/fake`` and ``grad_norm/term/consistency`` (when on) and ``fake/t_r_mean`` (mean renoise
        timestep over all samples).
    """
    from contextlib import nullcontext

    from rtdmd_bench import parallel
    from rtdmd_bench.training.term_grads import TermGradMeter, graph_params, metric_key

    bb, step, rng = sess.bb, sess.state.step, sess.rng
    cons = consistency.enabled and consistency.weight > 0
    n = sum(len(b.keys) for b in batches)
    n_meas = len(batches) if measured_batches <= 0 else min(measured_batches, len(batches))
    meter = TermGradMeter(scale=len(batches) / n_meas)
    total, t_rs, logs = 0.0, [], {}
    for i, b in enumerate(batches):
        t_r, eps = renoise_draws(sess, renoise, b.s, b.keys, stream)
        t_p = consistency_timesteps(t_r, rng.rand(step, f"{stream}/delta", b.keys, bb.device),
                                    consistency.epsilon_timestep) if cons else None
        z_pair = tuple(rng.randn(step, f"{stream}/cz{j}", b.keys, bb.latent_shape, bb.device) for j in (1, 2)) \
            if cons else None
        with graph_params(sess.fake) if i < n_meas else nullcontext() as params:
            terms, logs = fake_score_term(bb, sess.fake, b.cond, b.x_s, b.s, t_r, eps, scale_out=renoise.scale_out,
                                          weight_clamp=renoise.weight_clamp,
                                          consistency_weight=consistency.weight if cons else 0.0, t_prime_r=t_p,
                                          z_pair=z_pair, two_sample=consistency.two_sample, sample_weight=b.weight)
            share = len(b.keys) / n
            if params is not None:
                meter.add({k: v * share for k, v in terms.items()}, params)
            loss = sum(terms.values())
            loop.backward(loss * share, sess.fake, sync=i == len(batches) - 1)
        total += loss.detach() * share
        t_rs.append(t_r)
    norm = loop.optimizer_step(sess.state.optimizers["fake"], sess.state.schedulers["fake"],
                               sess.state.params("fake"), max_grad_norm)
    term_norms = {metric_key(k): v for k, v in meter.norms(lambda t: parallel.all_reduce_mean(t, sess.dist)).items()}
    return {"loss_fake": total, **logs, "grad_norm/fake": norm, **term_norms, "fake/t_r_mean": torch.cat(t_rs).mean()}


def final_sample_batches(sess: Session, x0: Tensor, prompts: Sequence[str], keys: Sequence[int],
                         batch_size: int, weights: Tensor | None = None) -> list[FakeBatch]:
    """Clean final samples ``x0 [N, ...]`` (``s = 0``) in chunks of ``batch_size`` (stage 2, §4.6), with optional
    per-sample loss ``weights [N]``."""
    out = []
    for lo in range(0, len(keys), batch_size):
        sl = slice(lo, lo + batch_size)
        with torch.no_grad():
            cond = sess.bb.encode(prompts[sl])
        ks = list(keys[sl])
        out.append(FakeBatch(cond, x0[sl], torch.zeros(len(ks), device=sess.bb.device), ks,
                             None if weights is None else weights[sl]))
    return out
