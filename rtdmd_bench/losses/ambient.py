"""Ambient-consistent (AC-DMD) pieces: exact renoising, the ambient target, the fake loss and consistency.

ALGORITHM.md §3.3-3.5. ``s`` is the level of the generator sample ``x_s`` (0 = clean), ``t > s`` the level it is
renoised to. ``s`` and ``t`` are python floats or ``[B]`` tensors (one level per sample); all arithmetic runs
in float32 and results are cast back to the dtype of ``x_s``. Requires ``s < 1``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rtdmd_bench.flow import sigma_to_timestep

_SIGMA_FLOOR_SQ = 1e-12  # sigma_ts = sqrt(max(t² − a²s², 1e-12)): keeps t == s finite


def _per_sample(v: float | Tensor, x: Tensor) -> Tensor:
    """A float or ``[B]`` level as a float32 tensor broadcastable against ``x`` (``[B, 1, ...]``)."""
    v = torch.as_tensor(v, dtype=torch.float32, device=x.device)
    return v.reshape(-1, *([1] * (x.ndim - 1))) if v.ndim == 1 else v


def _kernel(s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    a_ts = (1 - t) / (1 - s)
    sigma_ts = torch.sqrt(torch.clamp(t * t - a_ts * a_ts * s * s, min=_SIGMA_FLOOR_SQ))
    return a_ts, sigma_ts


def renoise(x_s: Tensor, s: float | Tensor, t: float | Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """Exact rectified-flow transition from level ``s`` to ``t`` (eq. 3.1).

        a_ts = (1−t)/(1−s),  σ_ts = sqrt(max(t² − a_ts² s², 1e−12)),  x_t = a_ts·x_s + σ_ts·ε'

    If ``x_s = (1−s)x0 + s ε₁`` then ``x_t = (1−t)x0 + n`` with total noise variance exactly ``t²``.

    Args:
        x_s: samples at level s ``[B, ...]``.
        s, t: levels, floats or ``[B]``.
        noise: ``ε'`` with the shape of ``x_s``.

    Returns:
        ``(x_t, sigma_ts)``: ``x_t`` like ``x_s``; ``sigma_ts`` float32, broadcastable against ``x_s``
        (``[B, 1, ...]`` for per-sample levels, a scalar otherwise).
    """
    s_, t_ = _per_sample(s, x_s), _per_sample(t, x_s)
    a_ts, sigma_ts = _kernel(s_, t_)
    x_t = a_ts * x_s.float() + sigma_ts * noise.float()
    return x_t.to(x_s.dtype), sigma_ts


def ambient_target(x_s: Tensor, noise: Tensor, s: float | Tensor, t: float | Tensor,
                   scale_out: bool = True) -> tuple[Tensor, Tensor]:
    """Ambient fake-score target for ``x_t = renoise(x_s, s, t, noise)`` (eqs. 3.2-3.3).

        A = −1/(1−s),  Bc = t + (1−t)·s²/(1−s)²
        scale_out off:  y  = A·x_s + (Bc/σ_ts)·ε'      λ = 1
        scale_out on:   y' = A·σ_ts·x_s + Bc·ε' = σ_ts·y,  λ = σ_ts

    ``E[y | x_t]`` is the flow velocity of the clean distribution that level-s samples represent; at s=0
    ``y = ε' − x0`` (and ``y' = t(ε' − x0)``).

    Args:
        x_s: ``[B, ...]`` samples at level s; noise: the ``ε'`` used by ``renoise``.
        s, t: levels, floats or ``[B]``.
        scale_out: the shipped configs' ``target_formula_move_scale_out: true``.

    Returns:
        ``(target, scale)``: target float32 like ``x_s``; scale ``λ`` broadcastable against ``x_s``.
    """
    s_, t_ = _per_sample(s, x_s), _per_sample(t, x_s)
    _, sigma_ts = _kernel(s_, t_)
    a = -1.0 / (1 - s_)
    bc = t_ + (1 - t_) * s_ * s_ / ((1 - s_) * (1 - s_))
    xs, eps = x_s.float(), noise.float()
    if scale_out:
        return a * sigma_ts * xs + bc * eps, sigma_ts
    return a * xs + (bc / sigma_ts) * eps, torch.ones_like(sigma_ts)


def fake_score_loss(v_pred: Tensor, target: Tensor, scale: Tensor | float,
                    weight_clamp: tuple[float, float] = (0.0, 10.0), sample_weight: Tensor | None = None) -> Tensor:
    """Weighted ambient flow-matching loss of the fake score (eq. 3.2).

        w = clamp(1/max(λ², 1e−12), lo, hi)  (nan→0, ±inf→clamps);   L = mean(w·(λ·v − y_λ)²)

    With scale-out on this equals ``mean(min(1, 10σ_ts²)·(v − y)²)``: short sub-intervals are down-weighted.
    ``sample_weight`` ``u_b`` multiplies sample b's terms, ``L = mean_b u_b·mean_{c,h,w}(w·(λv − y_λ)²)`` (the
    calibrated tilt's importance weights, ``losses.tilt``).

    Args:
        v_pred: fake-score velocity ``[B, ...]`` (with grad).
        target: ``y_λ`` from ``ambient_target``; scale: its ``λ`` (broadcastable).
        weight_clamp: ``(fake_loss_weight_clamp_min, fake_loss_weight_clamp_max)``.
        sample_weight: optional ``[B]`` per-sample weights (treated as constants).

    Returns:
        float32 scalar.
    """
    lam = torch.as_tensor(scale, dtype=torch.float32, device=v_pred.device)
    w = 1.0 / torch.clamp(lam * lam, min=_SIGMA_FLOOR_SQ)
    w = torch.nan_to_num(w, nan=0.0).clamp(weight_clamp[0], weight_clamp[1])
    per_element = w * (lam * v_pred.float() - target.float()) ** 2
    if sample_weight is None:
        return per_element.mean()
    u = sample_weight.detach().float().to(v_pred.device).reshape(-1, *([1] * (v_pred.ndim - 1)))
    return (u * per_element).mean()


def consistency_loss(h_anchor: Tensor, h_1: Tensor, h_2: Tensor, two_sample: bool = True) -> Tensor:
    """Two-sample consistency (martingale) estimator of the fake x0-predictor (eq. 3.4).

        two_sample:  L = mean[(h'_1 − h_a) ⊙ (h'_2 − h_a)]   (unbiased for ‖E[h'|x_t] − h_a‖²; may be < 0)
        otherwise:   L = mean[(h'_1 − h_a)²]

    NaN results become 0 (the reference's ``nan_to_num``).

    Args:
        h_anchor: ``h_a = x_t − t·v_φ`` ``[B, ...]``; h_1, h_2: ``h'_i = x'_i − σ'·F_φ(x'_i)`` from two
            independent stop-grad CPS transitions to the earlier level σ'.

    Returns:
        float32 scalar.
    """
    d1 = h_1.float() - h_anchor.float()
    d2 = (h_2.float() - h_anchor.float()) if two_sample else d1
    return torch.nan_to_num((d1 * d2).mean(), nan=0.0)



def renoise_timesteps(s: Tensor, u: Tensor, offset: float = 10.0, end: float = 1000.0,
                      clamp: tuple[float, float] = (20.0, 980.0)) -> Tensor:
    """Renoising model timesteps ``t_r`` for samples at levels ``s`` (§3.3, §4.6; invariant 19).

        start = 1000·s + offset;  end ← start + 1 where end ≤ start;  t_r = start + u·(end − start);  clamp [lo, hi]

    The clamp puts point masses at ``lo``/``hi`` (pitfall P2); ``t = t_r/1000`` maps linearly (no shift, P1).

    Args:
        s: ``[B]`` levels of the samples (0 for clean outputs).
        u: ``[B]`` uniforms in [0, 1) (the caller owns the randomness, see ``training.backbone.SampleRNG``).
        offset, end: ``timestep_offset`` and ``end_timestep``.
        clamp: ``(max(min_renoise_step, min_step), min(max_renoise_step, max_step, 999))``.

    Returns:
        ``t_r`` float32 ``[B]``.
    """
    start = sigma_to_timestep(s.float()) + offset
    stop = torch.full_like(start, float(end))
    stop = torch.where(stop <= start, start + 1.0, stop)
    return (start + u.to(start) * (stop - start)).clamp(clamp[0], clamp[1])


def consistency_timesteps(t_r: Tensor, u: Tensor, epsilon_timestep: float = 200.0) -> Tensor:
    """Earlier consistency timestep ``t'_r = max(t_r − δ, 0)``, ``δ ~ UniformInt{1..round(ε_T)}`` (§3.5 step 2).

    Args:
        t_r: ``[B]`` renoising timesteps; u: ``[B]`` uniforms in [0, 1) giving ``δ = 1 + floor(u·round(ε_T))``.
        epsilon_timestep: ``consistency_epsilon_timestep``.

    Returns:
        ``t'_r`` float32 ``[B]`` (may fall below ``1000·s``; nothing in the reference prevents it).
    """
    hi = max(int(round(epsilon_timestep)), 1)
    delta = 1.0 + torch.floor(u.to(t_r.device, torch.float32) * hi).clamp(max=hi - 1)
    return torch.clamp(t_r.float() - delta, min=0.0)
