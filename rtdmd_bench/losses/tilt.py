"""The calibrated tilt: fake-score importance weights whose DM fixed point is ``p̃ ∝ p·exp(βR)`` (ALGORITHM.md §5).

Derivation. Let ``q`` be the generator's distribution, ``p`` the teacher's, ``R`` the (weighted) reward and
``β > 0``. Train the fake score by the usual denoising objective on generator samples ``x0 ~ q``, but weight each
sample by

    w(x0) = exp(−β R(x0)) / E_q[exp(−β R)]                                                            (T.1)

The weighted joint ``w(x0) q(x0) N(x_t; (1−t)x0, t²I)`` is the joint of ``q' = q·exp(−βR)/Z'`` with the same
forward kernel, so the minimiser of the weighted loss is the velocity (score) of ``q'_t``, the diffused ``q'``,
at every level t. The generator's DM term then moves its samples along ``s_{p,t} − s_{q',t}`` (eq. 3.6, with any
positive per-sample normaliser or time weight). That vanishes at every t exactly when ``q'_t = p_t``, i.e. when
``q' = p`` (the Gaussian convolution is injective), i.e. when

    q = p·exp(βR)/Z = p̃.                                                                              (T.2)

So p̃ is the fixed point whatever the DM weighting, renoise range or normaliser: no policy gradient or reward
back-propagation is needed (they would add a second, uncalibrated tilt). At t → 0 with the KL time weight the
update is exactly ``∇_θ KL(q‖p̃)``, because ``s_{q'} = s_q − β∇R`` there: ``∇KL(q‖p) − β∇E_q R``.

Estimation. A normaliser that is the same for every sample does not move the minimiser (it rescales the loss), so
one normaliser for the whole epoch batch, across prompts and ranks, keeps every conditional minimiser exact
(normalising per prompt group would not in an unconditional world). Normalising by the batch's own sum
(``Σ_j e^{−βR_j}``, self-normalised importance sampling) is biased at finite N: an epoch that happens to miss the
rare low-reward samples still gives its weights a total of N, so the fake score under-represents low rewards and
the generator under-tilts. The recipe therefore divides by a running mean over epochs, ``Ẑ ← m·Ẑ + (1−m)·mean_j
e^{−βR_j}`` (``update_log_normalizer``; m = ``aux.tilt_momentum``), which makes each epoch's weighted loss an
unbiased estimate up to the slow drift of Ẑ. The cost of the calibration is variance: the effective sample size
``(Σw)²/Σw² = N/E_q[w²]`` is ``N/(E_p[e^{−βR}]·E_p[e^{βR}])`` at the fixed point and falls fast as β times the
spread of R grows (``tilt_effective_sample_size`` is logged every epoch).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def tilt_weights(reward: Tensor, beta: float, log_normalizer: float | Tensor | None = None) -> Tensor:
    """Importance weights of eq. (T.1): ``w_i = exp(−β R_i) / Ẑ``.

    Args:
        reward: ``[N]`` weighted rewards ``R`` (the whole epoch batch of every rank).
        beta: tilt strength β (units 1/R); 0 gives all ones.
        log_normalizer: ``log Ẑ`` (``update_log_normalizer``); None self-normalises, ``Ẑ = mean_j exp(−βR_j)``
            (mean weight 1; biased at finite N, see the module docstring).

    Returns:
        ``[N]`` float32 weights, computed in float64 in log space.

    >>> tilt_weights(torch.tensor([0.0, 0.6931471805599453]), 1.0).tolist()  # e^0, e^{-ln 2} -> 1 : 1/2
    [1.3333333730697632, 0.6666666865348816]
    >>> tilt_weights(torch.tensor([0.0, 0.6931471805599453]), 1.0, log_normalizer=0.0).tolist()
    [1.0, 0.5]
    """
    logw = -beta * reward.detach().double().reshape(-1)
    if log_normalizer is None:
        return (logw.numel() * torch.softmax(logw, dim=0)).float()
    return torch.exp(logw - torch.as_tensor(log_normalizer, dtype=torch.float64)).float()


def update_log_normalizer(log_z: float | None, reward: Tensor, beta: float, momentum: float) -> float:
    """Running ``log Ẑ`` of ``E_q[exp(−βR)]``: ``Ẑ ← m·Ẑ + (1−m)·mean_j exp(−βR_j)`` in log space (the first call,
    ``log_z`` None, starts at this batch's mean).

    >>> round(update_log_normalizer(None, torch.tensor([0.0, 0.6931471805599453]), 1.0, 0.9), 6)  # log 0.75
    -0.287682
    >>> round(update_log_normalizer(0.0, torch.tensor([0.6931471805599453]), 1.0, 0.5), 6)  # log(.5·1 + .5·.5)
    -0.287682
    """
    logw = -beta * reward.detach().double().reshape(-1)
    batch = float(torch.logsumexp(logw, 0) - math.log(logw.numel()))
    if log_z is None:
        return batch
    return float(torch.logaddexp(torch.tensor(math.log(momentum) + log_z, dtype=torch.float64),
                                 torch.tensor(math.log1p(-momentum) + batch, dtype=torch.float64)))


def tilt_effective_sample_size(weights: Tensor) -> Tensor:
    """Kish effective sample size ``(Σw)²/Σw²`` of importance weights ``[N]`` (N for equal weights)."""
    w = weights.detach().double()
    return (w.sum() ** 2 / (w * w).sum()).float()


# ---------------------------------------------------------------------------------------------- β-meter
# A stage-2 update is  w_dm·∇L_DM + ∇L_PG + ∇L_BP.  The meter writes each term as a coefficient times the natural
# gradient it estimates,
#
#     ∇L_DM ≈ c_DM·∇E_t KL(q_t‖p_t)        (nats; t = the run's renoise levels, the exact-KL mode's reference)
#     ∇L_PG ≈ −c_PG·∇_SF E[R]              (score-function half of eq. 5.3, steps 0..N−2)
#     ∇L_BP ≈ −c_BP·∇_PW E[R]              (pathwise half, the deterministic last step)
#
# and reads two numbers off it, with G the logged per-term gradient norms:
#
#  * the β of the objective  E_t KL(q_t‖p_t) − β·E_q R  the update descends (where the run is heading):
#
#     β_update = tilt_beta + c_R / c_DM,   c_R = (G_PG + G_BP) / (G_PG/c_PG + G_BP/c_BP)                 (M.1)
#
#    (c_R is the coefficient of ∇E[R] when the two halves are parallel);
#  * the β of the distribution the run is at: for q = p·e^{β'R}/Z, ∇KL(q‖p) = β'·∇E_q R, so
#
#     β_state = ‖∇KL‖ / ‖∇E R‖ ≈ (G_DM/c_DM) / (G_PG/c_PG + G_BP/c_BP)                                  (M.2)
#
# At a fixed point the forces cancel (G_DM ≈ G_PG + G_BP) and the two agree. For the exact-KL mode (raw_loo
# advantages with β, Gaussian log-prob, subset correction, BP scale β, KL time weight, no normaliser) every
# coefficient is exact and β_update = β; for the paper's weights they rest on the approximations stated in each
# function, and β_state also on the gradient norms being signal (a norm includes the estimator's noise, which
# inflates ‖∇E R‖ from the policy gradient most).


def advantage_scale(adv: Tensor, reward: Tensor, group_ids: Tensor) -> Tensor:
    """Least-squares ``s`` in ``A ≈ s·(R − mean_group R)``: the advantages' units per unit of reward.

    Standardised advantages (eq. 4.1, one reward) give ``s = 1/σ_w`` (pooled within-group std of R); ``raw_loo``
    gives ``β·K/(K−1)``. With several rewards it is the projection of the advantages on the weighted sum R.

    Args:
        adv, reward, group_ids: ``[N]`` advantages, weighted rewards ``R = Σ_k w_k r_k`` and prompt-group ids.

    Returns:
        float32 scalar (0 when R is constant within every group).
    """
    from rtdmd_bench.losses.policy import group_mean

    c = reward.double() - group_mean(reward.double(), group_ids)
    den = (c * c).sum()
    return (adv.double() * c).sum().div(den).float() if float(den) > 0 else torch.zeros(())


def policy_gradient_coefficient(adv_scale: float, k: int, n_selected: int, step_factors: list[float],
                                subset_correction: bool) -> float:
    """``c_PG`` of eq. (M.1): the policy term per unit of the score-function gradient ``∇_SF E[R]``.

        c_PG = s · (K−1)/K · [(N−1)/|S| if subset_correction] · |S|/(N−1) · mean_j f_j

    ``s`` = ``advantage_scale``; ``(K−1)/K``: the group mean includes the sample itself (the leave-one-out
    baseline is unbiased); ``|S|/(N−1)``: a random subset S of the N−1 stochastic steps is trained per epoch;
    ``f_j`` = ∇logp_j / ∇log π_j: ``2ρ_j²/D`` for the simplified log-prob (eq. 2.3, P4), 1 for the Gaussian one.
    Approximation: every stochastic step carries the same share of ∇_SF E[R] (the ``f_j`` are averaged).

    Args:
        adv_scale: ``s``. k: images per prompt K. n_selected: |S|. step_factors: ``f_j`` of the N−1 stochastic
            steps.
    """
    if n_selected == 0 or not step_factors or k < 2:
        return 0.0
    n_stoch = len(step_factors)
    subset = n_stoch / n_selected if subset_correction else 1.0
    return adv_scale * (k - 1) / k * subset * n_selected / n_stoch * sum(step_factors) / n_stoch


def dm_kl_coefficient(diff_abs: Tensor, normalizer: Tensor | None, t: Tensor, numel: int,
                      time_weight: Tensor | None = None) -> Tensor:
    """``c_DM / w_dm`` of eq. (M.1) at s = 0: the DM term per unit of ``∇E_t KL(q_t‖p_t)`` (nats).

    Per sample b the DM gradient is ``ω_b Δ_bᵀ∂x0_b/∂θ / (D n_b)`` (eq. 3.6, ``Δ = x̂0_f − x̂0_r``, normaliser
    ``n_b``, time weight ``ω_b``) while its KL gradient is ``κ_b Δ_bᵀ∂x0_b/∂θ`` with ``κ = (1−t)²/t²`` (§5 a), so
    the sample's conversion factor is ``λ_b = ω_b/(D n_b κ_b)``. Averaged with the weight of each sample in the KL
    gradient, ``κ_b u_b`` (``u_b = mean|Δ_b|``; assumes ``‖∂x0/∂θ‖`` alike across samples):

        c_DM / w_dm = Σ_b ω_b u_b/(D n_b) / Σ_b κ_b u_b

    With ``ω = D·κ`` and no normaliser (the exact-KL mode) it is exactly 1.

    Args:
        diff_abs: ``[B]`` ``u_b``. normalizer: ``[B]`` ``n_b`` or None (no normalisation). t: ``[B]`` levels.
        numel: D latent elements per sample. time_weight: ``[B]`` ``ω_b`` or None (1).

    Returns:
        float32 scalar (0 when every Δ is 0).
    """
    u = diff_abs.double()
    kappa = (1 - t.double()) ** 2 / t.double().clamp(min=1e-6) ** 2
    omega = torch.ones_like(u) if time_weight is None else time_weight.double()
    n = torch.ones_like(u) if normalizer is None else normalizer.double()
    den = (kappa * u).sum()
    return ((omega * u / (numel * n)).sum() / den).float() if float(den) > 0 else torch.zeros(())


def state_beta_estimate(c_dm: float, g_dm: float, c_pg: float = 0.0, c_bp: float = 0.0, g_pg: float = 0.0,
                        g_bp: float = 0.0) -> float:
    """The β-meter's reading of the current distribution, eq. (M.2): ``(G_DM/c_DM) / (G_PG/c_PG + G_BP/c_BP)``.

    NaN when there is no DM term or no reward gradient (e.g. the calibrated mode, whose DM term is measured
    against p̃, not p).

    >>> state_beta_estimate(c_dm=0.5, g_dm=1.0, c_pg=2.0, g_pg=1.0)  # ‖∇KL‖ = 2, ‖∇E R‖ = 0.5
    4.0
    """
    reward = sum(g / c for g, c in ((g_pg, c_pg), (g_bp, c_bp)) if g > 0 and c > 0)
    if c_dm <= 0 or g_dm <= 0 or reward <= 0:
        return float("nan")
    return float((g_dm / c_dm) / reward)


def effective_beta_estimate(c_dm: float, c_pg: float = 0.0, c_bp: float = 0.0, g_pg: float = 0.0,
                            g_bp: float = 0.0, tilt_beta: float = 0.0) -> float:
    """The β-meter's update reading, eq. (M.1): ``β_update = tilt_beta + c_R/c_DM`` with
    ``c_R = (G_PG + G_BP)/(G_PG/c_PG + G_BP/c_BP)``.

    A reward term with a zero coefficient or gradient norm drops out; without any, ``β̂ = tilt_beta`` (the
    calibrated mode's DM term is itself ``∇KL(q‖p̃)``). Returns NaN when the DM coefficient is 0 (no DM term:
    no finite β).

    >>> effective_beta_estimate(c_dm=0.5, c_pg=2.0, g_pg=1.0)  # PG only: c_PG/c_DM
    4.0
    >>> effective_beta_estimate(c_dm=1.0, c_pg=2.0, c_bp=0.5, g_pg=1.0, g_bp=1.0)  # 2/(1/2 + 1/0.5) = 0.8
    0.8
    """
    parts = [(g, c) for g, c in ((g_pg, c_pg), (g_bp, c_bp)) if g > 0 and c > 0]
    if not parts:
        return float(tilt_beta)
    if c_dm <= 0:
        return float("nan")
    c_r = sum(g for g, _ in parts) / sum(g / c for g, c in parts)
    return float(tilt_beta + c_r / c_dm)
