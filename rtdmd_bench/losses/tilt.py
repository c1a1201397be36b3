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

Estimation. ``E_q`` in (T.1) is the batch mean. A constant normaliser does not move the minimiser (it rescales
the loss), so normalising over the whole epoch batch, across prompts and ranks, keeps every conditional
minimiser exact; normalising per prompt group would not in an unconditional world. The cost is variance: the
effective sample size is ``(Σw)²/Σw² = N/E_q[w²]``, which at the fixed point is ``N/(E_p[e^{−βR}]·E_p[e^{βR}])``
and falls fast as β times the spread of R grows (``tilt_effective_sample_size`` reports it every epoch).
"""

from __future__ import annotations

import torch
from torch import Tensor


def tilt_weights(reward: Tensor, beta: float) -> Tensor:
    """Self-normalised importance weights of eq. (T.1): ``w_i = N·exp(−β R_i) / Σ_j exp(−β R_j)`` (mean 1).

    Args:
        reward: ``[N]`` weighted rewards ``R`` of the samples over which the weights are normalised (the whole
            epoch batch of every rank).
        beta: tilt strength β (units 1/R); 0 gives all ones.

    Returns:
        ``[N]`` float32 weights, mean 1, computed in float64 with a log-sum-exp.

    >>> tilt_weights(torch.tensor([0.0, 0.6931471805599453]), 1.0).tolist()  # e^0, e^{-ln 2} -> 1 : 1/2
    [1.3333333730697632, 0.6666666865348816]
    """
    r = reward.detach().double().reshape(-1)
    logw = -beta * r
    return (r.numel() * torch.softmax(logw, dim=0)).float()


def tilt_effective_sample_size(weights: Tensor) -> Tensor:
    """Kish effective sample size ``(Σw)²/Σw²`` of importance weights ``[N]`` (N for equal weights)."""
    w = weights.detach().double()
    return (w.sum() ** 2 / (w * w).sum()).float()
