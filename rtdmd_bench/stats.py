"""Bootstrap statistics over per-image scores grouped by prompt (numpy only): the one home of the resampling
kernel used by results.json CIs (``bootstrap_ci``, ``macro_bootstrap_ci``) and by paired comparisons
(``paired_bootstrap`` in ``report.paired``).

The unit of resampling is the PROMPT: images of one prompt are correlated (same text), so the CI of a mean
over images resamples prompts with replacement and recomputes the image-weighted mean (cluster bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000


def resampled_means(sums: np.ndarray, counts: np.ndarray, n_resamples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Cluster-bootstrap replicates of an image-weighted mean.

    Args:
        sums / counts: ``[P]`` per-group sums of the values and their counts (a group = a prompt).
        n_resamples: R. rng: numpy Generator (consumed: one ``integers`` draw of shape ``[R, P]``).

    Returns:
        ``[R]``: ``stat_r = Σ_p sums[idx_rp] / Σ_p counts[idx_rp]`` with ``idx ~ U{0..P−1}^{R×P}``.
    """
    idx = rng.integers(0, len(sums), size=(n_resamples, len(sums)))
    return sums[idx].sum(axis=1) / counts[idx].sum(axis=1)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central ``level`` percentile interval ``(q_{(1−level)/2}, q_{(1+level)/2})`` of bootstrap replicates."""
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(replicates, [tail, 1.0 - tail])
    return float(lo), float(hi)


def _sums_counts(groups: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([g.sum() for g in groups]), np.array([len(g) for g in groups], dtype=np.float64)


def bootstrap_ci(values_by_prompt: Sequence[Sequence[float]], n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the image-weighted mean, resampling prompts with replacement.

    Args:
        values_by_prompt: one sequence of valid scores per prompt (empty prompts are ignored).
        n_resamples: bootstrap resamples R.
        seed: RNG seed (the CI is a deterministic function of the data and the seed).
        level: confidence level.

    Returns:
        ``(lo, hi)``, or None with fewer than 2 non-empty prompts (no spread to estimate). With one resample
        matrix ``idx [R, P]``: ``stat_r = sum_p sums[idx_rp] / sum_p counts[idx_rp]``.
    """
    groups = [np.asarray(v, dtype=np.float64) for v in values_by_prompt if len(v)]
    if len(groups) < 2:
        return None
    sums, counts = _sums_counts(groups)
    return percentile_interval(resampled_means(sums, counts, n_resamples, np.random.default_rng(seed)), level)


def macro_bootstrap_ci(groups_by_tag: Sequence[Sequence[Sequence[float]]], n_resamples: int = DEFAULT_RESAMPLES,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the macro mean over tags (GenEval's official overall).

    Prompts are resampled with replacement WITHIN each tag (stratified: every tag keeps its prompt count), each
    tag's image-weighted mean is recomputed, and the statistic is the unweighted mean of the tag means.
    Returns None when any tag has fewer than 2 non-empty prompts.
    """
    rng = np.random.default_rng(seed)
    per_tag = []
    for groups in groups_by_tag:
        groups = [np.asarray(v, dtype=np.float64) for v in groups if len(v)]
        if len(groups) < 2:
            return None
        sums, counts = _sums_counts(groups)
        per_tag.append(resampled_means(sums, counts, n_resamples, rng))
    if not per_tag:
        return None
    return percentile_interval(np.mean(per_tag, axis=0), level)


def summarize(values_by_prompt: Sequence[Sequence[float]], n_resamples: int = DEFAULT_RESAMPLES,
              seed: int = 0) -> dict[str, float | int | list[float] | None]:
    """``{mean, ci95, std, n, n_prompts}`` of valid scores grouped by prompt."""
    flat = np.concatenate([np.asarray(v, dtype=np.float64) for v in values_by_prompt if len(v)] or [np.zeros(0)])
    ci = bootstrap_ci(values_by_prompt, n_resamples, seed)
    return {
        "mean": float(flat.mean()) if flat.size else None,
        "ci95": list(ci) if ci is not None else None,
        "std": float(flat.std()) if flat.size else None,
        "n": int(flat.size),
        "n_prompts": sum(1 for v in values_by_prompt if len(v)),
    }
