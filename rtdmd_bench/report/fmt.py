"""Number and markdown formatting shared by the leaderboard, compare and check outputs.

Decimals follow the uncertainty: a value is printed to two significant digits of its CI half-width,
so "0.3190 ± 0.0031" and "22.86 ± 0.05" both show exactly the digits the data supports.
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_DECIMALS = 4
MAX_DECIMALS = 6


def decimals_for(halfwidth: float | None) -> int:
    """Decimals that show two significant digits of ``halfwidth`` (DEFAULT_DECIMALS when unknown or 0).

    >>> decimals_for(0.0031), decimals_for(0.05), decimals_for(1.2), decimals_for(None)
    (4, 3, 1, 4)
    """
    if halfwidth is None or not math.isfinite(halfwidth) or halfwidth <= 0:
        return DEFAULT_DECIMALS
    return max(0, min(MAX_DECIMALS, 1 - math.floor(math.log10(halfwidth))))


def fmt_num(value: float | None, decimals: int = DEFAULT_DECIMALS, signed: bool = False) -> str:
    """Fixed decimals with the typographic minus '−'; a '+' on signed deltas; '–' for a missing value."""
    if value is None:
        return "–"
    if abs(value) < 0.5 * 10 ** -decimals:
        value = 0.0  # avoid "-0.000"
    text = f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"
    return text.replace("-", "−")


def halfwidth(ci: Any) -> float | None:
    """Half the width of a [lo, hi] interval, or None."""
    if not ci:
        return None
    return (float(ci[1]) - float(ci[0])) / 2.0


def fmt_mean_ci(mean: float | None, ci: Any, n: int | None = None) -> str:
    """``mean ± halfwidth (n=N)`` at the precision of the interval."""
    if mean is None:
        return "–" + (f" (n={n})" if n is not None else "")
    hw = halfwidth(ci)
    dec = decimals_for(hw)
    text = fmt_num(mean, dec) + (f" ± {fmt_num(hw, dec)}" if hw is not None else "")
    return text + (f" (n={n})" if n is not None else "")


def fmt_interval(ci: Any, decimals: int) -> str:
    """``[lo, hi]`` at fixed decimals, '–' without an interval."""
    if not ci:
        return "–"
    return f"[{fmt_num(float(ci[0]), decimals)}, {fmt_num(float(ci[1]), decimals)}]"


def fmt_p(p: float | None) -> str:
    """p-values: 3 significant digits, '<0.001' below that."""
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


def md_cell(text: Any) -> str:
    """Escape a value for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines (cells escaped)."""
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return lines
