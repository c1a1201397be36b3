"""Per-image records -> the ``results`` section of results.json (see eval/schema.py for every key)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from rtdmd_bench.stats import macro_bootstrap_ci, summarize


def _by_prompt(recs: list[dict[str, Any]], reward: str) -> tuple[dict[int, list[float]], int]:
    groups: dict[int, list[float]] = defaultdict(list)
    invalid = 0
    for rec in recs:
        value = rec.get("scores", {}).get(reward)
        ok = rec.get("valid", {}).get(reward, False)
        if ok and value is not None and math.isfinite(value):
            groups[rec["prompt_id"]].append(float(value))
        else:
            invalid += 1
    return groups, invalid


def _natural(tag: str) -> tuple:
    """Numeric tags in numeric order (GenEval2's atom counts 3..10), then the others alphabetically."""
    return (0, int(tag), "") if tag.isdigit() else (1, 0, tag)


def _tag_groups(recs: list[dict[str, Any]], reward: str) -> dict[str, dict[int, list[float]]]:
    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in recs:
        if rec.get("tag") is not None:
            by_tag[rec["tag"]].append(rec)
    return {tag: _by_prompt(by_tag[tag], reward)[0] for tag in sorted(by_tag, key=_natural)}


def _breakdowns(recs: list[dict[str, Any]], reward: str, resamples: int, seed: int) -> dict[str, Any]:
    """Means of sub-scores a reward reports per image in ``extras[reward]["breakdown"]`` as
    ``{name: {group: [values]}}`` (GenEval2: ``{"skill": {"count": [atom scores]}}``), over valid images.

    Each group's mean pools all its values (atom level, as GenEval2's per-skill analysis); its CI resamples
    prompts, the unit of correlation. Returns ``{name: {group: {mean, ci95, n}}}``.
    """
    pooled: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for rec in recs:
        if not rec.get("valid", {}).get(reward, False):
            continue
        for name, groups in ((rec.get("extras", {}).get(reward) or {}).get("breakdown") or {}).items():
            for group, values in groups.items():
                pooled[name][group][rec["prompt_id"]].extend(float(v) for v in values)
    out: dict[str, Any] = {}
    for name in sorted(pooled):
        out[name] = {}
        for group in sorted(pooled[name], key=_natural):
            s = summarize(list(pooled[name][group].values()), resamples, seed)
            out[name][group] = {"mean": s["mean"], "ci95": s["ci95"], "n": s["n"]}
    return out


def _tags(tag_groups: dict[str, dict[int, list[float]]], resamples: int, seed: int) -> dict[str, dict[str, Any]]:
    out = {}
    for tag, groups in tag_groups.items():
        s = summarize(list(groups.values()), resamples, seed)
        out[tag] = {"mean": s["mean"], "ci95": s["ci95"], "n": s["n"]}
    return out


def _prompt_level(groups: dict[int, list[float]]) -> float | None:
    """For 0/1 scores: fraction of prompts with at least one correct image (GenEval's prompt-level number)."""
    values = [v for g in groups.values() for v in g]
    if not values or any(v not in (0.0, 1.0) for v in values):
        return None
    return sum(1 for g in groups.values() if max(g) == 1.0) / len(groups)


def entry(recs: list[dict[str, Any]], suite_spec: Any, name: str, reward_spec: Any, resamples: int,
          seed: int = 0) -> dict[str, Any]:
    """Statistics of reward ``name`` (as the run names it: registry name or plugin path) on one suite's
    records; invalid scores are counted and excluded."""
    groups, invalid = _by_prompt(recs, name)
    stats = summarize(list(groups.values()), resamples, seed)
    tag_groups = _tag_groups(recs, name) if suite_spec.tag_field else {}
    tags = _tags(tag_groups, resamples, seed)
    tag_means = [t["mean"] for t in tags.values() if t["mean"] is not None]
    headline = getattr(reward_spec, "headline", "mean")
    headline = headline if headline in ("mean", "macro_over_tags") and tag_means else "mean"
    if headline == "macro_over_tags":
        macro_ci = macro_bootstrap_ci([list(g.values()) for g in tag_groups.values()], resamples, seed)
        headline_ci = list(macro_ci) if macro_ci else None
    else:
        headline_ci = stats["ci95"]
    return {
        "suite": suite_spec.name, "suite_version": suite_spec.version,
        "reward": name, "reward_version": reward_spec.version,
        "units": reward_spec.units, "higher_is_better": reward_spec.higher_is_better,
        **stats, "n_invalid": invalid, "tags": tags,
        "macro_over_tags": sum(tag_means) / len(tag_means) if tag_means else None,
        "prompt_level": _prompt_level(groups),
        "headline": headline,
        "headline_ci95": headline_ci,
        "breakdowns": _breakdowns(recs, name, resamples, seed),
    }
