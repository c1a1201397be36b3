"""Paired statistics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from rtdmd_bench.report.paired import (
    is_binary,
    mcnemar,
    mcnemar_from_pairs,
    paired_bootstrap,
    paired_summary,
    sign_flip_pvalue,
)


def test_sign_flip_exact_enumeration_by_hand():
    # diffs 1, 2, 3: sums over the 8 sign patterns are ±6, ±4, ±2, ±0; |sum| >= 6 for 2 of 8.
    assert sign_flip_pvalue([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)
    # diffs 1, 1, 1, 1: |sum| = 4 only for ++++ and ----: 2 of 16.
    assert sign_flip_pvalue([1.0, 1.0, 1.0, 1.0]) == pytest.approx(2 / 16)
    # diffs 1, -1: sums are 0 (two patterns) and ±2; observed 0, so every pattern is as extreme.
    assert sign_flip_pvalue([1.0, -1.0]) == 1.0
    assert sign_flip_pvalue([0.0, 0.0]) == 1.0


def test_sign_flip_ties_counted_despite_float_rounding():
    # 0.1 + 0.2 vs 0.3: the pattern (+, +, -) gives 0.0 up to rounding; |T*| >= |T| must treat ties as ties.
    assert sign_flip_pvalue([0.1, 0.2, 0.3]) == pytest.approx(2 / 8)


def test_sign_flip_monte_carlo_is_close_to_exact_and_never_zero():
    diffs = [0.5] * 20  # exact p = 2 / 2**20
    p = sign_flip_pvalue(diffs, n_resamples=999, seed=1)
    assert p == pytest.approx(1 / 1000)  # no resample reaches |sum| = 10, add-one correction
    exact = sign_flip_pvalue([1.0, 2.0, 3.0, -0.5] * 5, exact_max_n=20)
    approx = sign_flip_pvalue([1.0, 2.0, 3.0, -0.5] * 5, n_resamples=20000, seed=3, exact_max_n=4)
    assert approx == pytest.approx(exact, abs=0.01)


def test_bootstrap_two_prompts_matches_the_exact_bootstrap_distribution():
    # diffs 0 and 2: resample means are 0 (1/4), 1 (1/2), 2 (1/4), so the 2.5%/97.5% quantiles are 0 and 2.
    mean, (lo, hi) = paired_bootstrap([0.0, 2.0], n_resamples=20000, seed=0)
    assert mean == 1.0
    assert (lo, hi) == (0.0, 2.0)


def test_bootstrap_constant_difference_has_zero_width_and_is_seeded():
    assert paired_bootstrap([0.25, 0.25, 0.25]) == (0.25, (0.25, 0.25))
    diffs = [0.3, -0.1, 0.2, 0.05, 0.4]
    assert paired_bootstrap(diffs, seed=7) == paired_bootstrap(diffs, seed=7)
    _, (lo, hi) = paired_bootstrap(diffs, seed=7)
    assert min(diffs) <= lo <= sum(diffs) / 5 <= hi <= max(diffs)


def test_paired_summary_uses_b_minus_a():
    result = paired_summary([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], n_resamples=500)
    assert (result.n, result.mean_a, result.mean_b, result.diff) == (3, 2.0, 4.0, 2.0)
    assert result.p_value == pytest.approx(0.25)  # diffs 1, 2, 3 as above
    with pytest.raises(ValueError, match="pair up"):
        paired_summary([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        paired_summary([math.nan], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        paired_bootstrap([])


def test_mcnemar_exact_and_mid_p_by_hand():
    # b=1, c=5, n=6: P[X<=1] = (1 + 6)/64; exact = 14/64; mid-p = 14/64 - P[X=1] = 14/64 - 6/64.
    r = mcnemar(1, 5)
    assert (r.p_exact, r.p_mid) == (pytest.approx(14 / 64), pytest.approx(8 / 64))
    # b=0, c=6: exact = 2/64, mid-p = 1/64.
    r = mcnemar(0, 6)
    assert (r.p_exact, r.p_mid) == (pytest.approx(2 / 64), pytest.approx(1 / 64))
    # symmetric counts: both p-values are exactly 1.
    r = mcnemar(3, 3)
    assert (r.p_exact, r.p_mid) == (1.0, pytest.approx(1.0))
    assert mcnemar(0, 0).p_exact == 1.0
    with pytest.raises(ValueError):
        mcnemar(-1, 2)


def test_mcnemar_from_pairs_counts_discordant_pairs():
    a = [1, 1, 0, 0, 1, 0, 0, 0]
    b = [1, 0, 1, 1, 1, 1, 1, 1]  # A-only: 1 (index 1); B-only: 5
    r = mcnemar_from_pairs(a, b)
    assert (r.a_only, r.b_only) == (1, 5)
    assert r.p_exact == pytest.approx(14 / 64)
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_from_pairs([0.5], [1.0])
    assert is_binary([0.0, 1.0]) and not is_binary([]) and not is_binary([0.2])


def test_docstring_examples_of_the_pure_modules():
    import doctest

    from rtdmd_bench.report import fmt, paired

    for module in (paired, fmt):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def _exact_mcnemar(a_only: int, b_only: int) -> tuple[float, float]:
    """The definition, in exact integers: 2 P[X <= k] and 2 P[X <= k] - P[X = k], X ~ Bin(n, 1/2)."""
    n, k = a_only + b_only, min(a_only, b_only)
    coef = tail = 1
    for i in range(k):  # C(n, i+1) = C(n, i) (n - i) / (i + 1), exactly
        coef = coef * (n - i) // (i + 1)
        tail += coef
    return min(1.0, 2 * tail / 2 ** n), min(1.0, (2 * tail - coef) / 2 ** n)


@pytest.mark.parametrize("n", [1000, 1001, 2400, 9001])
def test_mcnemar_for_many_discordant_pairs_equals_the_exact_rational(n):
    """Past EXACT_MCNEMAR_MAX_N the p-values come from a saddle-point formula and a float series (linear
    time); they must equal the exact rational to 1e-12 relative."""
    for k in (0, 3, n // 10, n // 2 - 40, n // 2):
        got = mcnemar(k, n - k)
        for value, exact in zip((got.p_exact, got.p_mid), _exact_mcnemar(k, n - k)):
            assert value == pytest.approx(exact, rel=1e-12, abs=0.0)
    big = mcnemar(48_900, 51_100)  # 100k discordant pairs (295 s with the old big-integer sum)
    assert 0.0 < big.p_mid < big.p_exact < 1e-10
