"""Bootstrap statistics over per-image scores grouped by prompt (numpy only): the one home of the resampling
kernel used by results.json CIs (``bootstrap_ci``, ``macro_bootstrap_ci``) and by paired comparisons
(``paired_bootstrap`` in ``report.paired``).

The unit of resampling is the PROMPT: images of one prompt are correlated (same text), so the CI of a mean
over images resamples prompts with replacement and recomputes the image-weighted mean (cluster bootstrap).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
CHUNK_ELEMENTS = 1 << 22  # resample matrices are built this many entries at a time (32 MB of int64)


def chunked_rows(n_rows: int, n_cols: int, draw: Callable[[int], np.ndarray],
                 stat: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``stat(draw(n_rows))`` computed in row blocks: ``draw(r) -> [r, n_cols]``, ``stat(block) -> [r]``.

    numpy Generators keep their buffered state between calls, so consecutive ``draw`` calls produce exactly the
    rows one big call would (tests/eval/test_stats_seeds_journal.py); with a row-wise ``stat`` the result is
    bit-identical while memory stays at ``CHUNK_ELEMENTS`` instead of ``n_rows * n_cols`` (2000 x 25k prompts
    was 400 MB per matrix, and the page faults of such buffers cost more than the arithmetic).
    """
    step = max(1, CHUNK_ELEMENTS // max(1, n_cols))
    if n_rows <= 0:
        return np.zeros(0)
    return np.concatenate([stat(draw(min(step, n_rows - r0))) for r0 in range(0, n_rows, step)])


def resampled_means(sums: np.ndarray, counts: np.ndarray, n_resamples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Cluster-bootstrap replicates of an image-weighted mean.

    Args:
        sums / counts: ``[P]`` per-group sums of the values and their counts (a group = a prompt).
        n_resamples: R. rng: numpy Generator (consumed: the ``integers`` draws of one ``[R, P]`` matrix, made
            in row blocks by ``chunked_rows``).

    Returns:
        ``[R]``: ``stat_r = Σ_p sums[idx_rp] / Σ_p counts[idx_rp]`` with ``idx ~ U{0..P−1}^{R×P}``.
    """
    n = len(sums)
    return chunked_rows(n_resamples, n, lambda r: rng.integers(0, n, size=(r, n)),
                        lambda idx: sums[idx].sum(axis=1) / counts[idx].sum(axis=1))


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
