"""Paired comparison of two runs: which rewards moved, by how much, on which prompts and tags.

Images are matched by (suite, prompt_id, sample_idx); an image counts for a reward only when both runs
scored it validly. Per prompt, the matched images are averaged, and the statistics treat prompts as
the sampling unit (``rtdmd_bench.report.paired``). A "gain" is a difference oriented so that positive
means better (``b - a`` for higher-is-better rewards, ``a - b`` otherwise).

Runs whose suites, seeds or resolutions differ are refused unless ``allow_mismatch``: their per-prompt
differences would measure the change of protocol, not of the model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rtdmd_bench.report.paired import (
    McNemarResult,
    PairedResult,
    is_binary,
    mcnemar_from_pairs,
    paired_summary,
)
from rtdmd_bench.report.runs import Run, sample_key, valid_score


class CompareError(ValueError):
    """The two runs cannot be compared (nothing in common, or they differ in protocol)."""


class MismatchError(CompareError):
    """The runs differ in suites, seeds, resolution or scorer versions; ``mismatches`` says how."""

    def __init__(self, mismatches: Sequence[str]):
        self.mismatches = list(mismatches)
        super().__init__("refusing to compare runs that differ:\n  - " + "\n  - ".join(self.mismatches)
                         + "\n(pass --allow-mismatch to compare anyway)")


@dataclass(frozen=True)
class PromptDiff:
    """One prompt's scores in both runs (means over the matched images)."""

    suite: str
    prompt_id: int
    prompt: str
    tag: str | None
    a: float
    b: float
    gain: float
    images_a: tuple[str, ...]
    images_b: tuple[str, ...]


@dataclass(frozen=True)
class TagDiff:
    """Paired difference restricted to the prompts of one tag."""

    tag: str
    stats: PairedResult


@dataclass(frozen=True)
class RewardDiff:
    """Comparison of one ``suite/reward`` entry.

    Attributes:
        key: ``"suite/reward"``.
        stats: paired statistics of ``b - a`` over prompts.
        n_images: matched images.
        mcnemar: for 0/1 scores, McNemar over matched images (``a_only`` = images B lost).
        tags: per-tag paired differences.
        improved / regressed: prompts with the largest gains / losses.
        role: ``"proxy"`` (a training reward of run B), ``"held-out"``, or None when B has no training rewards.
    """

    key: str
    suite: str
    reward: str
    units: str
    higher_is_better: bool
    stats: PairedResult
    n_images: int
    mcnemar: McNemarResult | None
    tags: tuple[TagDiff, ...]
    improved: tuple[PromptDiff, ...]
    regressed: tuple[PromptDiff, ...]
    role: str | None

    @property
    def gain(self) -> float:
        return self.stats.diff if self.higher_is_better else -self.stats.diff

    @property
    def gain_ci(self) -> tuple[float, float]:
        lo, hi = self.stats.ci
        return (lo, hi) if self.higher_is_better else (-hi, -lo)

    @property
    def verdict(self) -> str:
        lo, hi = self.gain_ci
        return "better" if lo > 0 else "worse" if hi < 0 else "no significant change"


@dataclass(frozen=True)
class HackingCheck:
    """Training-reward (proxy) gains next to held-out rewards; ``flagged`` = proxy up and held-out down."""

    training_rewards: tuple[str, ...]
    proxies_up: tuple[str, ...]
    held_out_down: tuple[str, ...]
    not_evaluated: tuple[str, ...]
    flagged: bool


@dataclass(frozen=True)
class Comparison:
    """Everything ``rtdmd-bench compare`` reports."""

    a_label: str
    b_label: str
    mismatches: tuple[str, ...]
    only_a: int
    only_b: int
    rewards: tuple[RewardDiff, ...]
    hacking: HackingCheck | None
    n_resamples: int
    seed: int
    tiny: bool = False  # either run is on tiny random weights (said in every rendering)
    trained_on: tuple[str, ...] = ()  # "<run>: <suite> (k of n prompts)" where a run's model trained on the prompts


def find_mismatches(a: Run, b: Run) -> list[str]:
    """Protocol differences that make per-prompt differences meaningless (empty when comparable)."""
    out = []
    suites_a = {k: (v or {}).get("sha256") for k, v in (a.results.get("suites") or {}).items()}
    suites_b = {k: (v or {}).get("sha256") for k, v in (b.results.get("suites") or {}).items()}
    if set(suites_a) != set(suites_b):
        out.append(f"suites: {a.label} has {sorted(suites_a)}, {b.label} has {sorted(suites_b)}")
    out += [f"suite {k}: prompt-file sha256 differs" for k in sorted(set(suites_a) & set(suites_b))
            if suites_a[k] != suites_b[k]]
    if a.seed != b.seed:
        out.append(f"seed: {a.label} used {a.seed}, {b.label} used {b.seed}")
    if a.resolution != b.resolution:
        out.append(f"resolution (height, width): {a.label} {a.resolution}, {b.label} {b.resolution}")
    if a.tiny != b.tiny:
        tiny = a.label if a.tiny else b.label
        out.append(f"weights: {tiny} ran on tiny random weights, the other on real weights")
    for key in sorted(set(a.entries) & set(b.entries)):
        ea, eb = a.entries[key], b.entries[key]
        if (ea["reward_version"], ea["units"]) != (eb["reward_version"], eb["units"]):
            out.append(f"{key}: scorer {ea['reward_version']} ({ea['units']}) vs {eb['reward_version']} ({eb['units']})")
    return out


def _pairs(a: Run, b: Run, suite: str, reward: str) -> dict[int, list[tuple[float, float, str, str]]]:
    """prompt_id -> [(score_a, score_b, image_a, image_b)] over images valid in both runs."""
    b_index = {sample_key(s): s for s in b.samples if s["suite"] == suite}
    out: dict[int, list[tuple[float, float, str, str]]] = defaultdict(list)
    for sa in a.samples:
        sb = b_index.get(sample_key(sa)) if sa["suite"] == suite else None
        if sb is None:
            continue
        va, vb = valid_score(sa, reward), valid_score(sb, reward)
        if va is not None and vb is not None:
            out[sa["prompt_id"]].append((va, vb, sa["image"], sb["image"]))
    return out


def compare_entry(a: Run, b: Run, key: str, *, top: int, n_resamples: int, seed: int,
                  training: Sequence[str]) -> RewardDiff | None:
    """Compare one ``suite/reward`` entry present in both runs (None when no image pairs up)."""
    entry = a.entries[key]
    suite, reward, hib = entry["suite"], entry["reward"], bool(entry["higher_is_better"])
    pairs = _pairs(a, b, suite, reward)
    if not pairs:
        return None
    pids = sorted(pairs)
    per_a = [float(np.mean([p[0] for p in pairs[i]])) for i in pids]
    per_b = [float(np.mean([p[1] for p in pairs[i]])) for i in pids]
    flat = [p for i in pids for p in pairs[i]]
    img_a, img_b = [p[0] for p in flat], [p[1] for p in flat]
    binary = is_binary(img_a) and is_binary(img_b)
    prompts = _prompt_info(a, suite)
    diffs = _prompt_diffs(pids, per_a, per_b, pairs, prompts, suite, hib)
    return RewardDiff(
        key=key, suite=suite, reward=reward, units=entry["units"], higher_is_better=hib,
        stats=paired_summary(per_a, per_b, n_resamples=n_resamples, seed=seed), n_images=len(flat),
        mcnemar=mcnemar_from_pairs(img_a, img_b) if binary else None,
        tags=_tag_diffs(pids, per_a, per_b, prompts, n_resamples, seed),
        improved=tuple(d for d in sorted(diffs, key=lambda d: (-d.gain, d.prompt_id)) if d.gain > 0)[:top],
        regressed=tuple(d for d in sorted(diffs, key=lambda d: (d.gain, d.prompt_id)) if d.gain < 0)[:top],
        role=None if not training else ("proxy" if reward in training else "held-out"),
    )


def _prompt_info(run: Run, suite: str) -> dict[int, tuple[str, str | None]]:
    return {s["prompt_id"]: (s["prompt"], s.get("tag")) for s in run.samples if s["suite"] == suite}


def _prompt_diffs(pids: list[int], per_a: list[float], per_b: list[float], pairs: dict[int, list[Any]],
                  prompts: dict[int, tuple[str, str | None]], suite: str, hib: bool) -> list[PromptDiff]:
    out = []
    for pid, va, vb in zip(pids, per_a, per_b, strict=True):
        prompt, tag = prompts[pid]
        out.append(PromptDiff(suite=suite, prompt_id=pid, prompt=prompt, tag=tag, a=va, b=vb,
                              gain=(vb - va) if hib else (va - vb),
                              images_a=tuple(p[2] for p in pairs[pid]), images_b=tuple(p[3] for p in pairs[pid])))
    return out


def _tag_diffs(pids: list[int], per_a: list[float], per_b: list[float],
               prompts: dict[int, tuple[str, str | None]], n_resamples: int, seed: int) -> tuple[TagDiff, ...]:
    by_tag: dict[str, list[int]] = defaultdict(list)
    for i, pid in enumerate(pids):
        tag = prompts[pid][1]
        if tag is not None:
            by_tag[tag].append(i)
    return tuple(TagDiff(tag, paired_summary([per_a[i] for i in idx], [per_b[i] for i in idx],
                                             n_resamples=n_resamples, seed=seed))
                 for tag, idx in sorted(by_tag.items()))


def hacking_check(rewards: Sequence[RewardDiff], training: Sequence[str]) -> HackingCheck | None:
    """Flag "proxy up, held-out down": a training reward improved and a held-out reward got worse,
    each with its 95% CI excluding zero. None when run B records no training rewards."""
    if not training:
        return None
    proxies_up = tuple(r.key for r in rewards if r.role == "proxy" and r.verdict == "better")
    held_down = tuple(r.key for r in rewards if r.role == "held-out" and r.verdict == "worse")
    evaluated = {r.reward for r in rewards}
    return HackingCheck(training_rewards=tuple(training), proxies_up=proxies_up, held_out_down=held_down,
                        not_evaluated=tuple(t for t in training if t not in evaluated),
                        flagged=bool(proxies_up and held_down))


def compare_runs(a: Run, b: Run, *, top: int = 5, allow_mismatch: bool = False, n_resamples: int = 2000,
                 seed: int = 0) -> Comparison:
    """Compare run B against run A (both loaded with samples).

    Args:
        a: the reference run.
        b: the new run; its ``model.training_rewards`` drive the reward-hacking check.
        top: most improved / regressed prompts kept per reward.
        allow_mismatch: compare even when suites, seeds, resolutions or scorer versions differ.
        n_resamples: bootstrap and sign-flip resamples.
        seed: their seed.

    Returns:
        The ``Comparison``.

    Raises:
        MismatchError: protocol differences without ``allow_mismatch``.
        CompareError: no reward entry or no image in common.
    """
    mismatches = find_mismatches(a, b)
    if mismatches and not allow_mismatch:
        raise MismatchError(mismatches)
    keys = sorted(set(a.entries) & set(b.entries))
    if not keys:
        raise CompareError(f"runs {a.label} and {b.label} share no suite/reward entry "
                           f"({sorted(a.entries)} vs {sorted(b.entries)})")
    training = b.training_rewards
    diffs = [compare_entry(a, b, k, top=top, n_resamples=n_resamples, seed=seed, training=training) for k in keys]
    rewards = tuple(d for d in diffs if d is not None)
    if not rewards:
        raise CompareError(f"runs {a.label} and {b.label} have no (suite, prompt_id, sample_idx) scored validly "
                           "in both")
    keys_a, keys_b = {sample_key(s) for s in a.samples}, {sample_key(s) for s in b.samples}
    return Comparison(a_label=a.label, b_label=b.label, mismatches=tuple(mismatches),
                      only_a=len(keys_a - keys_b), only_b=len(keys_b - keys_a), rewards=rewards,
                      hacking=hacking_check(rewards, training), n_resamples=n_resamples, seed=seed,
                      tiny=a.tiny or b.tiny,
                      trained_on=tuple(f"{r.label}: {suite} ({o.get('n_overlap')} of {o.get('n_prompts')} prompts)"
                                       for r in (a, b) for suite, o in sorted(r.trained_on.items())))


def comparison_to_dict(cmp: Comparison) -> dict[str, Any]:
    """JSON-ready form of a comparison (``--json``), with each reward's oriented gain and verdict."""
    out = asdict(cmp)
    for entry, diff in zip(out["rewards"], cmp.rewards, strict=True):
        entry.update(gain=diff.gain, gain_ci=list(diff.gain_ci), verdict=diff.verdict)
    return out
