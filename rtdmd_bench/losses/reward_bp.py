"""Reward back-propagation (BP) on the deterministic last step (ALGORITHM.md §4.7 item 2, §5 eq. 5.3).

The reward modules are the registry's own scorers (``rtdmd_bench.rewards.build``) called with grad enabled:
no scorer formula is copied here. Only rewards whose spec declares ``differentiable=True`` may be used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rtdmd_bench.flow import x0_from_velocity


class BPRewardError(ValueError):
    """A reward asked for back-propagation that has no differentiable path (or is unknown)."""


def check_bp_rewards(names: Sequence[str]) -> None:
    """Raise ``BPRewardError`` unless every reward in ``names`` is registered and declares ``differentiable``.

    Cheap: reads specs only, imports no backend (used at config validation, before any model loads).
    """
    from rtdmd_bench.rewards import reward_spec

    bad = [n for n in names if not reward_spec(n).differentiable]
    if bad:
        raise BPRewardError(
            f"reward back-propagation needs differentiable rewards, but {bad} declare differentiable=False. "
            f"Remove them from bp.rewards (they can still drive the policy-gradient advantages via 'rewards'), "
            f"or leave bp.rewards unset to use the differentiable subset of the training rewards."
        )


def differentiable_subset(weights: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
    """Split training-reward weights into ``(differentiable, dropped names)`` (the reference's BP default, P15)."""
    from rtdmd_bench.rewards import reward_spec

    keep = {n: w for n, w in weights.items() if reward_spec(n).differentiable}
    return keep, [n for n in weights if n not in keep]


def reward_hinge_loss(reward: Tensor, margin: float = 3.0, scale: float = 1e-4) -> Tensor:
    """BP hinge: ``L_bp = scale · mean_b relu(margin − R)``.

    With the shipped margin 3 and ``R ≈ 1.5`` the hinge is always active, so ``∇L = −scale·mean ∇R`` (P15).

    Args:
        reward: ``[B]`` weighted reward sum ``R`` (with grad).

    Returns:
        float32 scalar.

    >>> float(reward_hinge_loss(torch.tensor([1.0, 4.0]), margin=3.0, scale=0.5))
    0.5
    """
    return scale * torch.relu(margin - reward.float()).mean()


def hinge_active(reward: Tensor, margin: float) -> Tensor:
    """Share of samples whose hinge ``relu(margin − R)`` is active (``R < margin``): only they get a BP gradient.

    >>> float(hinge_active(torch.tensor([1.0, 2.0, 23.2, 3.0]), 3.0))
    0.5
    """
    return (reward.detach().float() < margin).float().mean()


def weighted_reward(images: Tensor, prompts: Sequence[str], rewards: Mapping[str, tuple[nn.Module, float]],
                    metadata: Sequence[Mapping[str, Any]] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """``R = Σ_k w_k · r_k(images, prompts)`` with grad through every scorer.

    Args:
        images: ``[B, 3, H, W]`` float in [0, 1] (with grad).
        rewards: name -> ``(reward module, weight)``.

    Returns:
        ``(R [B], {name: detached r_k [B]})``.
    """
    total = torch.zeros(images.shape[0], dtype=torch.float32, device=images.device)
    parts = {}
    with torch.enable_grad():
        for name, (module, w) in rewards.items():
            scores = module(images, prompts, metadata).scores.float()
            parts[name] = scores.detach()
            total = total + w * scores
    return total, parts


def reward_bp_loss(x: Tensor, v: Tensor, sigma: Tensor | float, sigma_next: float,
                   decode: Callable[[Tensor], Tensor], rewards: Mapping[str, tuple[nn.Module, float]],
                   prompts: Sequence[str], metadata: Sequence[Mapping[str, Any]] | None = None,
                   margin: float = 3.0, scale: float = 1e-4,
                   only_deterministic: bool = True, bp_batch_size: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
    """BP term of one generator step: decode ``x̂0 = x − σ·v`` with grad and hinge the weighted reward.

    The pathwise half of eq. (5.3): ``x`` (the rollout latent) is a constant, the gradient flows through ``v``
    into the generator, through the frozen decoder and the frozen scorers.

    Args:
        x: ``[B, ...]`` input latent of the step (detached rollout state).
        v: ``[B, ...]`` generator velocity at ``(x, σ)`` (with grad).
        sigma: level of the step, float or ``[B]``; sigma_next: the level it goes to.
        decode: latents -> images ``[B, 3, H, W]`` in [0, 1], keeping the graph.
        rewards: name -> ``(differentiable reward module, weight)``.
        only_deterministic: ``bp_only_deterministic``: return an exact 0 unless ``sigma_next == 0``.
        bp_batch_size: decode and score at most this many samples at a time (§4.7: 2 for FLUX); 0 = the whole
            batch. Same loss value and gradient as unchunked (see ``_chunked_hinge``).

    Returns:
        ``(loss, metrics)``: scalar; ``bp_reward`` (mean R), ``bp_reward_min``, ``bp/hinge_active`` (share of samples with
        R < margin, the only ones with a gradient) and ``bp_<name>`` means (absent for a skipped step).
    """
    if only_deterministic and float(sigma_next) != 0.0:
        return (v.float() * 0.0).sum(), {}  # exact zero that keeps the graph shape for DDP
    x0 = x0_from_velocity(x.float(), v.float(), sigma if not isinstance(sigma, Tensor) else sigma.float())
    if 0 < bp_batch_size < x0.shape[0]:
        loss, total, parts = _chunked_hinge(x0, bp_batch_size, decode, rewards, prompts, metadata, margin, scale)
    else:
        total, parts = weighted_reward(decode(x0), prompts, rewards, metadata)
        loss = reward_hinge_loss(total, margin, scale)
    metrics = {"bp_reward": total.detach().mean(), "bp_reward_min": total.detach().min(),
               "bp/hinge_active": hinge_active(total, margin),
               **{f"bp_{k}": p.mean() for k, p in parts.items()}}
    return loss, metrics


def _chunked_hinge(x0: Tensor, chunk: int, decode: Callable[[Tensor], Tensor],
                   rewards: Mapping[str, tuple[nn.Module, float]], prompts: Sequence[str],
                   metadata: Sequence[Mapping[str, Any]] | None, margin: float,
                   scale: float) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """``reward_hinge_loss`` of ``decode(x0)`` in chunks, holding one chunk's decoder/scorer graph at a time.

    With ``L = scale/B · Σ_b relu(margin − R_b)`` the per-chunk terms ``L_c`` add up to ``L``. Each chunk is
    decoded and scored from a detached leaf ``x0_c`` and differentiated at once (``g_c = ∂L_c/∂x0_c``, then its
    graph is freed), and the returned loss is the surrogate

        L̃ = Σ_b ⟨x0_b, g_b⟩ + (L − Σ_b ⟨x0_b, g_b⟩).detach()

    whose value is ``L`` and whose gradient w.r.t. everything upstream of ``x0`` (``v``, the generator) is
    ``Σ_b g_b · ∂x0_b/∂θ`` = the unchunked gradient. ``torch.autograd.grad`` (not ``backward``) only touches the
    leaves, so frozen decoder/scorer parameters get no ``.grad`` and no DDP/FSDP hook fires here.

    Returns:
        ``(loss, R [B] detached, {name: r_k [B] detached})``.
    """
    n = x0.shape[0]
    differentiate = torch.is_grad_enabled() and x0.requires_grad
    grads, totals, parts, value = [], [], {}, x0.new_zeros(())
    for lo in range(0, n, chunk):
        leaf = x0[lo:lo + chunk].detach().requires_grad_(differentiate)
        meta = None if metadata is None else metadata[lo:lo + chunk]
        r, p = weighted_reward(decode(leaf), prompts[lo:lo + chunk], rewards, meta)
        part = reward_hinge_loss(r, margin, scale) * (leaf.shape[0] / n)  # chunk mean -> its share of the batch mean
        if differentiate:
            grads.append(torch.autograd.grad(part, leaf)[0])
        value = value + part.detach()
        totals.append(r.detach())
        for k, t in p.items():
            parts.setdefault(k, []).append(t)
    if not differentiate:
        return value, torch.cat(totals), {k: torch.cat(t) for k, t in parts.items()}
    surrogate = (x0 * torch.cat(grads)).sum()
    return surrogate + (value - surrogate.detach()), torch.cat(totals), {k: torch.cat(t) for k, t in parts.items()}
