"""Distribution-matching (DMD) generator loss, ALGORITHM.md eq. (3.6)."""

from __future__ import annotations

import torch
from torch import Tensor


def dmd_loss(x: Tensor, fake_pred: Tensor, real_pred: Tensor, normalize: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
    """DMD surrogate whose gradient w.r.t. ``x`` is the normalised score difference (eq. 3.6).

        g = P_f − P_r
        g ← g / mean_{c,h,w}|x − P_r|            (per-sample normaliser, if ``normalize``)
        g ← nan_to_num(g)
        L = 0.5 · mean_{b,c,h,w} (x − sg(x − g))²  (float64)

    The value is ``0.5·mean(g²)`` and ``∂L/∂x = g / numel(x)``, so a descent step moves ``x`` along
    ``P_r − P_f``, toward the teacher. ``fake_pred``/``real_pred`` are treated as constants.

    Args:
        x: generator output ``[B, ...]`` carrying the gradient (stage 1: ``x_s``; stage 2: final x̂0).
        fake_pred: fake-score projection ``P_f`` ``[B, ...]`` (3.5), or x̂0 of the fake score at s=0.
        real_pred: teacher projection ``P_r`` ``[B, ...]``.
        normalize: divide by the per-sample mean |x − P_r| (``gradient_normalization``).

    Returns:
        ``(loss, metrics)``: a float32 scalar, and detached metrics ``dmd_g_abs`` (mean |g|) and
        ``dmd_normalizer`` (mean of the per-sample normaliser; 1 when ``normalize`` is off).
    """
    with torch.no_grad():
        xd = x.detach().double()
        real = real_pred.detach().double()
        g = fake_pred.detach().double() - real  # [B, ...]
        if normalize:
            dims = tuple(range(1, x.ndim))
            norm = (xd - real).abs().mean(dim=dims, keepdim=True)  # [B, 1, ...]
            g = g / norm
        else:
            norm = torch.ones((), dtype=torch.float64, device=x.device)
        g = torch.nan_to_num(g)
        target = xd - g
    loss = 0.5 * ((x.double() - target) ** 2).mean()
    metrics = {"dmd_g_abs": g.abs().mean().float(), "dmd_normalizer": norm.mean().float()}
    return loss.float(), metrics


def kl_time_weight(t: Tensor, numel: int) -> Tensor:
    """Per-sample DM weight ``w(t) = D·(1−t)²/t²`` that turns ``dmd_loss`` into a KL gradient in nats (§5 a).

    At s = 0 the score difference is ``s_fake − s_real = ((1−t)/t²)(x̂0_f − x̂0_r)`` and ``∂x_t/∂θ = (1−t)∂x0/∂θ``,
    so ``∇_θ KL(p_θ,t ‖ p_t) = E[((1−t)²/t²)(x̂0_f − x̂0_r)ᵀ ∂x0/∂θ]`` summed over the ``D`` latent elements. The
    un-normalised, mean-reduced ``dmd_loss`` has gradient ``(x̂0_f − x̂0_r)/(B·D)`` per element, so weighting each
    sample's difference by ``w(t)`` gives ``(1/B)·Σ_b ∇KL_b``: comparable with ``β·∇r`` of the reward terms.

    Args:
        t: ``[B]`` renoise levels in (0, 1) (clamped below at 1e-6). numel: ``D`` latent elements per sample.

    Returns:
        ``[B]`` weights. Example: ``kl_time_weight(tensor([0.5]), 4) == tensor([4.])``.
    """
    return numel * (1 - t) ** 2 / t.clamp(min=1e-6) ** 2
