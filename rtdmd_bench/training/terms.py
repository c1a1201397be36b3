"""Loss terms of the recipes: the pure losses of ``rtdmd_bench.losses`` wired to a ``Backbone``.

Each function does one algorithmic unit of ALGORITHM.md and returns ``(loss, metrics)``; recipes only decide
which terms run when. Randomness comes in as tensors (drawn by the recipe from ``SampleRNG``).
Levels are fp32 ``[B]`` tensors; latents are fp32 ``[B, *latent_shape]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rtdmd_bench.flow import sigma_batch, timestep_to_sigma
from rtdmd_bench.losses.ambient import ambient_target, consistency_loss, fake_score_loss, renoise
from rtdmd_bench.losses.dmd import dmd_loss
from rtdmd_bench.losses.tilt import dm_kl_coefficient
from rtdmd_bench.sampling import CPSStepRecord, cps_log_prob, cps_rollout, cps_step
from rtdmd_bench.training.backbone import Backbone


def batch_levels(bb: Backbone, n: int, device: Any) -> list[Tensor]:
    """The backbone's N+1 levels, each as an fp32 ``[n]`` tensor (one level per sample)."""
    return [sigma_batch(s, n, device) for s in bb.sigmas]


def model_velocity(bb: Backbone, net: nn.Module, cond: Any) -> Callable[[Tensor, Tensor, int], Tensor]:
    """``(x, σ [B], k) -> v``: the ``velocity_fn`` of ``sampling.cps_rollout`` for ``net`` on ``cond``."""
    return lambda x, sigma, k: bb.velocity(net, x, sigma, cond)


# ---------------------------------------------------------------------------------------------- rollouts
@dataclass
class LastStep:
    """The last executed step of a random-stop rollout (§2.3): input, velocity (with grad), CPS output."""

    x_in: Tensor
    v: Tensor
    x_out: Tensor
    sigma: Tensor
    sigma_next: Tensor


def random_stop_rollout(bb: Backbone, net: nn.Module, cond: Any, x: Tensor, stop: int, noises: Sequence[Tensor],
                        grad_last: bool) -> LastStep:
    """Run CPS steps ``0..stop−1`` of the generator; only the last one (optionally) keeps its graph (§2.3).

    Args:
        x: ``[B, ...]`` initial noise at ``sigmas[0]``. stop: k ∈ 1..N. noises: per-step CPS noise ``z_k``.
    """
    sig, steps = batch_levels(bb, x.shape[0], x.device), []
    cps_rollout(x.float(), model_velocity(bb, net, cond), sig, bb.eta, lambda k: noises[k], stop=stop,
                grad=lambda k: grad_last and k == stop - 1, on_step=steps.append)
    last = steps[-1]
    return LastStep(last.x.detach(), last.v, last.sample, sig[last.k], sig[last.k + 1])


@dataclass
class Trajectory:
    """A stage-2 rollout (§2.4): inputs ``latents[:, k]``, outputs ``next_latents[:, k]``, log-probs ``[B, N]``."""

    latents: Tensor
    next_latents: Tensor
    log_probs: Tensor

    @property
    def final(self) -> Tensor:
        return self.next_latents[:, -1]

    def select(self, idx: Tensor) -> Trajectory:
        return Trajectory(self.latents[idx], self.next_latents[idx], self.log_probs[idx])


@torch.no_grad()
def rollout_with_logprob(bb: Backbone, net: nn.Module, cond: Any, x: Tensor,
                         noise_fn: Callable[[int], Tensor | None], kind: str = "simplified") -> Trajectory:
    """N CPS steps with their log-probabilities (eq. 2.3), no grad; ``noise_fn(k)`` gives step k's ``z``."""
    steps: list[CPSStepRecord] = []
    cps_rollout(x.float(), model_velocity(bb, net, cond), batch_levels(bb, x.shape[0], x.device), bb.eta, noise_fn,
                on_step=steps.append)
    return Trajectory(torch.stack([st.x for st in steps], 1), torch.stack([st.sample for st in steps], 1),
                      torch.stack([cps_log_prob(st.sample, st.mean, st.std, kind) for st in steps], 1))


def chain_x0(bb: Backbone, gen: nn.Module, cond: Any, traj: Trajectory) -> Tensor:
    """Final x̂0 of the stored rollouts with the pathwise gradient through EVERY generator step.

    Each stored transition is reparameterised at the current θ: ``x_{k+1} = μ_θ(x_k) + (x_{k+1}^old − sg μ_θ)``,
    whose value is the stored sample (on-policy, θ has not moved within the epoch) and whose gradient is the
    reparameterisation gradient ``∂μ/∂θ + ∂μ/∂x_k·∂x_k/∂θ`` with the noise ``ρz`` held fixed.

    Returns:
        ``[B, ...]`` fp32 (the last step is deterministic: ``x̂0 = μ``).
    """
    x = traj.latents[:, 0].float()
    return cps_rollout(x, model_velocity(bb, gen, cond), batch_levels(bb, x.shape[0], x.device), bb.eta,
                       lambda k: torch.zeros_like(x),
                       carry=lambda st: st.mean + (traj.next_latents[:, st.k].float() - st.mean.detach()))


# ---------------------------------------------------------------------------------------------- fake score
def fake_score_term(bb: Backbone, fake: nn.Module, cond: Any, x_s: Tensor, s: Tensor, t_r: Tensor, eps: Tensor,
                    *, scale_out: bool, weight_clamp: tuple[float, float], consistency_weight: float = 0.0,
                    t_prime_r: Tensor | None = None, z_pair: tuple[Tensor, Tensor] | None = None,
                    two_sample: bool = True, sample_weight: Tensor | None = None
                    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Fake-score objective ``L_ac + w_c·L_cons`` on samples ``x_s`` at levels ``s`` (§3.4-3.5; §4.6 with s=0).

    Args:
        x_s: ``[B, ...]`` generator samples (detached). t_r: ``[B]`` renoise timesteps (σ = t_r/1000).
        eps: ``ε'`` of the renoising. t_prime_r / z_pair: consistency timesteps and the two transition noises.
        sample_weight: optional ``[B]`` weights of ``L_ac`` (the calibrated tilt, ``losses.tilt``); the
            consistency term stays unweighted (every score satisfies it, so it does not move the minimiser).

    Returns:
        ``(terms, metrics)``: ``terms`` = ``{"fake": L_ac, "consistency": w_c·L_cons}`` (the latter only with
        ``consistency_weight > 0``; the objective is their sum), ``metrics`` the detached unweighted losses.
    """
    t = timestep_to_sigma(t_r)
    with torch.no_grad():
        x_t, _ = renoise(x_s.detach().float(), s, t, eps)
        y, lam = ambient_target(x_s.detach().float(), eps, s, t, scale_out=scale_out)
    v = bb.velocity(fake, x_t, t, cond)
    l_ac = fake_score_loss(v, y, lam, weight_clamp, sample_weight)
    metrics = {"loss_fake_ac": l_ac.detach()}
    terms = {"fake": l_ac}
    if consistency_weight > 0:
        l_cons = consistency_term(bb, fake, cond, x_t, t, v, timestep_to_sigma(t_prime_r), z_pair, two_sample)
        metrics["loss_fake_consistency"] = l_cons.detach()
        terms["consistency"] = consistency_weight * l_cons
    return terms, metrics


def consistency_term(bb: Backbone, fake: nn.Module, cond: Any, x_t: Tensor, t: Tensor, v: Tensor, t_prime: Tensor,
                     z_pair: tuple[Tensor, Tensor], two_sample: bool) -> Tensor:
    """Two-sample consistency of the fake x0-predictor ``h(x, τ) = x − τ·F(x, τ)`` (eq. 3.4, one hop).

    ``h_a = x_t − t·v`` keeps the grad of ``v``; the two CPS transitions to ``t'`` use ``sg(v)`` (stop-grad);
    ``h'_i = x'_i − t'·F(x'_i, t')`` are differentiable.
    """
    tb = t.view(-1, *([1] * (x_t.ndim - 1)))
    h_a = x_t.float() - tb * v.float()
    hs = []
    for z in z_pair:
        with torch.no_grad():
            x_p, _, _ = cps_step(x_t, v.detach(), t, t_prime, bb.eta, z)
        v_p = bb.velocity(fake, x_p, t_prime, cond)
        hs.append(x_p - t_prime.view_as(tb) * v_p)
    return consistency_loss(h_a, hs[0], hs[1], two_sample)


# ---------------------------------------------------------------------------------------------- generator
def dmd_generator_term(bb: Backbone, teacher: nn.Module, fake: nn.Module, cond: Any, uncond: Any, x_s: Tensor,
                       s: Tensor, t_r: Tensor, eps: Tensor, z: Tensor, guidance: float,
                       normalize: bool = True, sample_weight: Tensor | None = None,
                       kl_coefficient: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """(AC-)DMD generator loss (§3.6): renoise ``x_s`` to t, read teacher and fake through one shared-noise CPS
    projection back to level ``s`` (eq. 3.5; x̂0 where s = 0), then ``dmd_loss(x_s, P_f, P_r)`` (eq. 3.6).

    Args:
        x_s: ``[B, ...]`` generator output at level s, WITH grad (the only gradient path, P12).
        z: ``[B, ...]`` projection noise shared by both projections.
        sample_weight: optional ``[B]`` weight ``w_b`` on the per-sample score difference ``g_b = P_f − P_r``;
            passed to ``dmd_loss`` as the constant prediction ``P_r + w(P_f − P_r)`` (its gradient is ``w_b·g_b``
            scaled as usual), e.g. ``losses.dmd.kl_time_weight``.
        kl_coefficient: also return ``dm/kl_coef_unit``, the term's units per unit of ``∇E_t KL(q_t‖p_t)``
            (``losses.tilt.dm_kl_coefficient``; meaningful at s = 0, the β-meter of stage 2).
    """
    t = timestep_to_sigma(t_r)
    with torch.no_grad():
        x_t, _ = renoise(x_s.detach().float(), s, t, eps)
        v_r = bb.velocity(teacher, x_t, t, cond, guidance, uncond)
        v_f = bb.velocity(fake, x_t, t, cond)
        p_r, _, _ = cps_step(x_t, v_r, t, s, bb.eta, z)
        p_f, _, _ = cps_step(x_t, v_f, t, s, bb.eta, z)
        extra = {}
        if kl_coefficient:
            dims = tuple(range(1, p_r.ndim))
            norm = (x_s.detach().float() - p_r).abs().mean(dim=dims) if normalize else None
            extra["dm/kl_coef_unit"] = dm_kl_coefficient((p_f - p_r).abs().mean(dim=dims), norm, t,
                                                         int(x_s[0].numel()), sample_weight)
        if sample_weight is not None:
            p_f = p_r + sample_weight.view(-1, *([1] * (p_r.ndim - 1))).to(p_r) * (p_f - p_r)
    loss, metrics = dmd_loss(x_s, p_f, p_r, normalize=normalize)
    return loss, {"loss_dmd": loss.detach(), **metrics, **extra}


def policy_logprob(bb: Backbone, net: nn.Module, cond: Any, traj: Trajectory, k: int,
                   kind: str = "simplified") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Recompute step k under the current policy: ``(logp [B], mean, std, v)`` of the stored transition."""
    b, dev = traj.latents.shape[0], traj.latents.device
    x = traj.latents[:, k]
    s, s_next = sigma_batch(bb.sigmas[k], b, dev), sigma_batch(bb.sigmas[k + 1], b, dev)
    v = bb.velocity(net, x, s, cond)
    _, mean, std = cps_step(x, v, s, s_next, bb.eta, torch.zeros_like(x))
    return cps_log_prob(traj.next_latents[:, k], mean, std, kind), mean, std, v


def kl_to_reference(mean: Tensor, ref_mean: Tensor, std: Tensor) -> Tensor:
    """Gaussian KL between two CPS transitions with the same ρ: ``mean(‖μ_θ − μ_ref‖²)/(2ρ²)`` (§4.7)."""
    rho2 = torch.clamp(torch.as_tensor(std, dtype=torch.float32) ** 2, min=1e-12)
    return (((mean.float() - ref_mean.float()) ** 2) / (2 * rho2)).mean()
