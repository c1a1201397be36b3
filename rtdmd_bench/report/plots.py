"""Matplotlib figures for the HTML report, rendered off-screen (Agg) to base64 PNG.

Figures are built with ``matplotlib.figure.Figure`` directly, never pyplot, so no global figure state
leaks between calls and no display backend is touched.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from rtdmd_bench.report.runs import Run, valid_score

DPI = 80
COLORS = ("#4a78b5", "#d9822b")


def _png_b64(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _scores(run: Run, suite: str, reward: str) -> list[float]:
    values = [valid_score(s, reward) for s in run.samples if s["suite"] == suite]
    return [v for v in values if v is not None]


def _tag_bars(ax: Any, runs: list[Run], key: str) -> bool:
    """Per-tag means with their 95% CIs as error bars, one bar group per tag; False when no tags."""
    tags = sorted({t for r in runs for t in (r.entries.get(key, {}).get("tags") or {})})
    if not tags:
        return False
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        entry_tags = run.entries.get(key, {}).get("tags") or {}
        xs, means, errs = [], [], [[], []]
        for j, tag in enumerate(tags):
            info = entry_tags.get(tag) or {}
            if info.get("mean") is None:
                continue
            lo, hi = info.get("ci95") or (info["mean"], info["mean"])
            xs.append(j + i * width)
            means.append(info["mean"])
            errs[0].append(max(0.0, info["mean"] - lo))
            errs[1].append(max(0.0, hi - info["mean"]))
        ax.bar(xs, means, width=width, yerr=errs, capsize=3, color=COLORS[i % 2], label=run.label)
    ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(tags))], tags, rotation=30, ha="right")
    ax.set_title("per tag (95% CI)", fontsize=9)
    return True


def reward_figure(runs: list[Run], key: str) -> str:
    """Base64 PNG for one ``suite/reward``: per-tag bars (when tagged) and the score distribution.

    Args:
        runs: one run, or A and B in compare mode (overlaid).
        key: ``"suite/reward"``.

    Returns:
        The PNG, base64-encoded.
    """
    from matplotlib.figure import Figure

    entry = runs[0].entries[key]
    fig = Figure(figsize=(8.0, 3.0), layout="constrained")  # keeps the suptitle clear of the panel titles
    has_tags = any((r.entries.get(key, {}).get("tags") or {}) for r in runs)
    axes = fig.subplots(1, 2 if has_tags else 1, squeeze=False)[0]
    if has_tags:
        _tag_bars(axes[0], runs, key)
    hist = axes[-1]
    for i, run in enumerate(runs):
        values = _scores(run, entry["suite"], entry["reward"])
        if values:
            hist.hist(values, bins=min(30, max(5, len(values) // 3)), alpha=0.6, color=COLORS[i % 2], label=run.label)
    hist.set_title(f"distribution of per-image scores ({entry['units']})", fontsize=9)
    if len(runs) > 1:
        hist.legend(fontsize=8)
    fig.suptitle(f"{key} {'↑' if entry['higher_is_better'] else '↓'}", fontsize=10)
    return _png_b64(fig)
