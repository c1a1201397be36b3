"""Group-relative advantages and the clipped policy-ratio loss (ALGORITHM.md §4.5, §4.7).

No collective calls here: for a global statistic the caller gathers the epoch's rewards from all ranks,
calls ``group_advantages`` on the full batch and keeps its local slice.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


def group_mean(r: Tensor, group_ids: Tensor) -> Tensor:
    """Per-sample mean of ``r`` over the samples sharing its group id. ``[N] -> [N]``."""
    _, inverse = torch.unique(group_ids, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    sums = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, inverse, r)
    counts = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, inverse, torch.ones_like(r))
    return (sums / counts)[inverse]


def _group_std(r: Tensor, group_ids: Tensor) -> Tensor:
    """Per-sample population std (ddof 0) of ``r`` within its group. ``[N] -> [N]``."""
    centred = r - group_mean(r, group_ids)
    return group_mean(centred * centred, group_ids).sqrt()


def reward_advantages(rewards: Mapping[str, Tensor], weights: Mapping[str, float], group_ids: Tensor,
                      global_std: bool = True, eps: float = 1e-4, standardize: bool = True) -> dict[str, Tensor]:
    """Each weighted reward's group-relative term of eq. 4.1, ``{k: w_k·A_k}`` with

        A_k[i] = (r_k[i] − mean_{j∈group(i)} r_k[j]) / (std(r_k) + eps)    std: global (ddof 0), or per group

    (``standardize=False``: no division, the raw centred reward of the ``raw_loo`` mode).
    Args: as ``group_advantages``. Returns ``{name: [N]}`` float32 (zero mean within every group).
    """
    missing = [k for k in weights if k not in rewards]
    if missing:
        raise KeyError(f"advantage weights name rewards that were not computed: {missing}")
    out = {}
    for name, w in weights.items():
        r = rewards[name].detach().float().reshape(-1)
        centred = r - group_mean(r, group_ids)
        if not standardize:
            out[name] = w * centred
            continue
        std = r.std(unbiased=False) if global_std else _group_std(r, group_ids)
        out[name] = w * centred / (std + eps)
    return out


def group_advantages(rewards: Mapping[str, Tensor], weights: Mapping[str, float], group_ids: Tensor,
                     global_std: bool = True, eps: float = 1e-4) -> Tensor:
    """Weighted per-reward group-relative advantages, re-standardised globally (eq. 4.1).

        A_k[i] = (r_k[i] − mean_{j∈group(i)} r_k[j]) / (std(r_k) + eps)    std: global (ddof 0), or per group
        A      = Σ_k w_k A_k
        A      = (A − mean(A)) / (std(A) + eps)

    Each ``A_k`` has zero mean within every group; the result has mean ≈ 0 and std ≈ 1 over the batch.
    Tiling over the T trained steps (identical columns) is the caller's ``A[:, None].expand(-1, T)``.

    Args:
        rewards: name -> ``[N]`` scores of the whole epoch batch (all ranks).
        weights: name -> weight; every weighted name must be in ``rewards`` (extra rewards are ignored).
        group_ids: ``[N]`` integer prompt-group ids (same prompt string = same id).
        global_std: ``per_prompt_global_std``: divide by the batch std instead of the group std.
        eps: added to both standard deviations.

    Returns:
        ``[N]`` float32 advantages.
    """
    parts = reward_advantages(rewards, weights, group_ids, global_std, eps)
    if not parts:
        raise ValueError("group_advantages needs at least one weighted reward")
    total = sum(parts.values())
    return (total - total.mean()) / (total.std(unbiased=False) + eps)


def group_spread(r: Tensor, group_ids: Tensor) -> Tensor:
    """Mean over prompt groups of the within-group population std of ``r`` ``[N]``: how much a reward varies
    between the K images of one prompt (0: it cannot rank them, so it gives no policy gradient).

    >>> float(group_spread(torch.tensor([1.0, 3.0, 5.0, 5.0]), torch.tensor([0, 0, 1, 1])))
    0.5
    """
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    per_sample = _group_std(r.detach().float().reshape(-1), group_ids)
    return (per_sample / counts[inverse].to(per_sample)).sum() / counts.numel()  # each group once


def advantage_shares(parts: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Each reward's share of the advantages: ``mean|w_k A_k| / Σ_j mean|w_j A_j|`` (sums to 1; 0 for all-zero).

    ``parts``: ``{name: w_k·A_k [N]}`` (``reward_advantages``, or ``w_k·(r_k − group mean)`` for ``raw_loo``).

    >>> {k: round(float(v), 2) for k, v in advantage_shares({"a": torch.tensor([1.0, -1.0]),
    ...                                                       "b": torch.tensor([3.0, -3.0])}).items()}
    {'a': 0.25, 'b': 0.75}
    """
    mags = {k: v.detach().float().abs().mean() for k, v in parts.items()}
    total = sum(mags.values(), torch.zeros(()))
    return {k: m / total if float(total) > 0 else torch.zeros(()) for k, m in mags.items()}


def clipped_policy_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, clip_range: tuple[float, float] = (1e-5, 1e-5),
                        adv_clip: float = 5.0) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO clipped surrogate on per-sample log-probabilities (eq. 4.2).

        r = exp(logp − old_logp),  Â = clamp(adv, −adv_clip, adv_clip)
        L = mean_b max(−Â·r, −Â·clamp(r, 1−ε_lo, 1+ε_hi))

    Inside the clip range ``∂L/∂logp_b = −Â_b·r_b/B``; for ``Â>0, r>1+ε_hi`` and ``Â<0, r<1−ε_lo`` the
    gradient is exactly zero.

    Args:
        logp: ``[B]`` log-probs under the current policy (with grad).
        old_logp: ``[B]`` log-probs stored at sampling time.
        adv: ``[B]`` advantages.
        clip_range: ``(ε_lo, ε_hi)``.
        adv_clip: ``adv_clip_max``.

    Returns:
        ``(loss, metrics)``: scalar; detached ``clip_frac`` (share of samples with r outside the range),
        ``ratio_mean``, ``ratio_min``, ``ratio_max``, ``approx_kl`` (0.5·mean((logp − old)²)).
    """
    log_ratio = logp.float() - old_logp.float().detach()
    ratio = torch.exp(log_ratio)
    a = adv.float().detach().clamp(-adv_clip, adv_clip)
    lo, hi = 1.0 - clip_range[0], 1.0 + clip_range[1]
    unclipped = -a * ratio
    clipped = -a * torch.clamp(ratio, lo, hi)
    loss = torch.maximum(unclipped, clipped).mean()
    with torch.no_grad():
        metrics = {
            "clip_frac": ((ratio < lo) | (ratio > hi)).float().mean(),
            "ratio_mean": ratio.mean(),
            "ratio_min": ratio.min(),
            "ratio_max": ratio.max(),
            "approx_kl": 0.5 * (log_ratio ** 2).mean(),
        }
    return loss, metrics


def leave_one_out_advantages(rewards: dict[str, Tensor], weights: dict[str, float], group_ids: Tensor,
                             beta: float) -> Tensor:
    """Raw leave-one-out advantages of the exact-KL mode: ``A_i = β·(R_i − mean_{j∈g(i), j≠i} R_j)``.

    ``R = Σ_k w_k r_k``. Not standardised, so ``E[A ∇log π]`` is β times the true score-function gradient of
    ``E[R]`` (eq. 5.3) with an unbiased per-group baseline; equals ``β·K/(K−1)·(R_i − mean_g R)``.

    Args:
        rewards: ``{name: [M]}`` raw scores; weights: ``{name: w}``; group_ids: ``[M]`` ints (prompt groups).

    Returns:
        ``[M]`` float32. Groups of one sample get 0 (no baseline exists).
    """
    r = sum(float(weights[k]) * rewards[k].float() for k in weights)
    ids = group_ids.long()
    n_groups = int(ids.max()) + 1
    total = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, ids, r)
    count = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, ids, torch.ones_like(r))
    others = (count[ids] - 1).clamp(min=1)
    loo_mean = (total[ids] - r) / others
    return torch.where(count[ids] > 1, beta * (r - loo_mean), torch.zeros_like(r))


def filter_zero_advantage(adv: Tensor, multiple: int, generator: torch.Generator | None = None) -> Tensor:
    """Indices of the samples the generator trains on after zero-advantage filtering (§4.5).

    Samples whose advantages are all zero (``Σ_j |A[i, j]| = 0``) carry no policy gradient and are dropped. The
    kept count is then padded up to a multiple of ``multiple`` (the number of sub-batches, so every rank runs the
    same number of backward calls) by re-admitting randomly chosen dropped samples; if every sample is zero, a
    random ``multiple`` are kept. Counts never exceed N.

    Args:
        adv: ``[N]`` or ``[N, T]`` advantages of the local samples.
        multiple: pad target (``sampling.grad_accum``, 16 in the shipped configs); ≥ 1.
        generator: CPU generator for the random re-admission (e.g. ``SampleRNG.generator(epoch, "adv_filter",
            rank)``), so the choice is reproducible and resumable.

    Returns:
        ``[M]`` int64 indices into the N samples, ascending, unique; ``M = min(N, multiple·⌈max(k, 1)/multiple⌉)``
        with ``k`` the number of nonzero samples.

    >>> filter_zero_advantage(torch.tensor([0.5, 0.0, -1.0, 2.0]), 1).tolist()
    [0, 2, 3]
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    a = adv.detach().reshape(adv.shape[0], -1).abs().sum(dim=1).cpu()
    n = a.shape[0]
    nonzero = torch.nonzero(a != 0).flatten()
    zero = torch.nonzero(a == 0).flatten()
    k = int(nonzero.numel())
    target = min(n, multiple * -(-max(k, 1) // multiple))  # ceil to a multiple; all-zero keeps one multiple
    extra = zero[torch.randperm(zero.numel(), generator=generator)[:target - k]]
    return torch.sort(torch.cat([nonzero, extra])).values
