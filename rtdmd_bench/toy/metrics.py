"""Sample-based metrics of the toy benchmark, each with a known value on exact samples.

* ``mmd``: ``sqrt`` of the biased (V-statistic) squared MMD with a sum of RBF kernels at fixed bandwidths,
  ``k(x, y) = Σ_h exp(−|x − y|²/(2h²))``. Biased on purpose: it is strictly positive on two independent exact
  sample sets, so its *noise floor* (same statistic, same n, two independent exact sets) is a scale to
  compare against ("within 3x the floor").
* ``energy``: energy distance ``2E|X−Y| − E|X−X'| − E|Y−Y'|`` (V-statistics, same floor logic).
* ``mode_tv``: ``½ Σ_k |ĥ_k − w_k|`` between the nearest-mean histogram of the samples and exact weights.
* ``variance_ratio``: per mode, ``tr Cov(samples assigned to k) / tr S_k``, averaged with the exact weights
  over modes holding ≥ ``min_count`` samples. ≈1 when matched, ≪1 on collapse.
* ``effective_beta``: ``argmin_β TV(ĥ(β), w̃(β))`` over a β grid, where ``w̃(β)`` are the exact tilted weights and
  ``ĥ(β)`` the histogram by nearest tilted mean (the tilt moves the means). Clipped to the grid ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from rtdmd_bench.toy.world import Mixture, nearest_mode

DEFAULT_BANDWIDTHS = (0.1, 0.3, 1.0)


def _rbf_mean(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float]) -> torch.Tensor:
    """``mean_{i,j} Σ_h exp(−|x_i − y_j|²/(2h²))`` (float64)."""
    d2 = torch.cdist(x.double(), y.double()).pow(2)
    return sum(torch.exp(-d2 / (2 * h * h)).mean() for h in bandwidths)


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS) -> float:
    """Biased RBF MMD between ``x [n, d]`` and ``y [m, d]``: ``sqrt(k̄(x,x) + k̄(y,y) − 2k̄(x,y))``."""
    m2 = _rbf_mean(x, x, bandwidths) + _rbf_mean(y, y, bandwidths) - 2 * _rbf_mean(x, y, bandwidths)
    return float(m2.clamp_min(0).sqrt())


def energy(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance (V-statistic) ``2E|X−Y| − E|X−X'| − E|Y−Y'|`` for ``x [n, d]``, ``y [m, d]``."""
    xd, yd = x.double(), y.double()
    return float(2 * torch.cdist(xd, yd).mean() - torch.cdist(xd, xd).mean() - torch.cdist(yd, yd).mean())


def noise_floor(sampler: Callable[[int, torch.Generator], torch.Tensor], stat: Callable, n: int,
                repeats: int = 3, seed: int = 12345) -> float:
    """Mean of ``stat(a, b)`` over ``repeats`` pairs of independent exact sample sets of size ``n``."""
    g = torch.Generator().manual_seed(seed)
    return sum(stat(sampler(n, g), sampler(n, g)) for _ in range(repeats)) / repeats


def mode_histogram(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Fraction of ``x [n, d]`` nearest to each of ``means [K, d]`` -> ``[K]`` float64."""
    idx = nearest_mode(means, x)
    return torch.bincount(idx, minlength=means.shape[0]).double() / max(len(x), 1)


def mode_tv(x: torch.Tensor, target: Mixture) -> float:
    """``½ Σ_k |ĥ_k − w_k|``, histogram by nearest target mean."""
    return float(0.5 * (mode_histogram(x, target.means) - target.weights).abs().sum())


def variance_ratio(x: torch.Tensor, target: Mixture, min_count: int = 10) -> float:
    """Weighted mean over populated modes of ``tr Cov(x | mode k) / tr S_k`` (NaN if no mode is populated)."""
    idx = nearest_mode(target.means, x)
    xd = x.double()
    num, den = 0.0, 0.0
    for k in range(target.means.shape[0]):
        xk = xd[idx == k]
        if len(xk) < min_count:
            continue
        ratio = float(xk.var(dim=0).sum() / torch.diagonal(target.covs[k]).sum())
        num += float(target.weights[k]) * ratio
        den += float(target.weights[k])
    return num / den if den > 0 else float("nan")


def mean_reward(x: torch.Tensor, reward: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """``mean r(x)`` over the samples."""
    with torch.no_grad():
        return float(reward(x.double()).mean())


def effective_beta(x: torch.Tensor, data: Mixture, reward, lo: float | None = None, hi: float = 30.0) -> float:
    """The β whose exact tilted mode weights best fit the samples' histogram (argmin of TV over β).

    A coarse grid (step 0.25 on ``[lo, hi]``) then a fine one (step 0.01 around the coarse argmin); clipped to the
    ends, so a collapsed generator reads as ``hi``.

    Args:
        x: samples ``[n, k]``, the first k coordinates of the world (histogram against the tilted mixture's
            marginal on them; the ring plane, k = 2, carries every mode).
        data: the untilted mixture p.
        reward: a toy reward with ``tilt(mix, beta)`` and ``min_beta(mix)``.
        lo, hi: search range; ``lo`` defaults to ``max(−5, 0.95·min_beta)``.
    """
    if lo is None:
        lo = max(-5.0, reward.min_beta(data) * 0.95)

    def argmin(grid: list[float]) -> float:
        return min(grid, key=lambda b: mode_tv(x, reward.tilt(data, b).project(x.shape[1])))

    coarse = argmin(torch.arange(lo, hi + 1e-9, 0.25).tolist())
    fine = torch.arange(max(lo, coarse - 0.25), min(hi, coarse + 0.25) + 1e-9, 0.01).tolist()
    return float(argmin(fine))
