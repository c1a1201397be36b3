"""CI regression gate: does a run regress against a committed baseline?

A ``suite/reward`` regresses when its gain (positive = better) is below ``-tolerance`` **and** the 95%
paired CI of the gain lies entirely below zero, so noise alone cannot fail CI and a tolerance absorbs
small accepted drifts (e.g. kernels differing across machines). A reward in the baseline that the run
lacks, or more invalid (failed) scores than the baseline, also fails.

The baseline is a run directory (or its results.json) copied from a trusted run; ``results.json`` and
``samples.jsonl`` suffice, images are not needed. Without ``samples.jsonl`` the gate falls back to an
unpaired test of the run's own 95% CI against the baseline mean (weaker; said in the output).

The paired gate compares the images both runs hold (suite, prompt_id, sample_idx) and prints that coverage; a
run that does not hold every baseline image is unusable input (exit 2: fewer prompts or samples would pass or fail
on a different population) unless ``allow_partial``, which gates on the intersection, invalid counts included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtdmd_bench.report import fmt
from rtdmd_bench.report.compare import compare_entry, find_mismatches
from rtdmd_bench.report.runs import Run, RunError, load_run, resolve_run_dir


class GateInputError(ValueError):
    """Unusable input for the gate (exit code 2): unreadable files, protocol mismatch, bad tolerance."""


@dataclass(frozen=True)
class GateResult:
    """The verdict for one ``suite/reward``; ``problem`` is empty when it passes."""

    key: str
    tolerance: float
    gain: float | None
    gain_ci: tuple[float, float] | None
    problem: str


@dataclass(frozen=True)
class GateReport:
    """All verdicts; ``paired`` is False in the unpaired fallback; ``coverage``: suite -> (images in both runs,
    baseline images)."""

    run_label: str
    baseline_label: str
    paired: bool
    results: tuple[GateResult, ...]
    new_in_run: tuple[str, ...]
    coverage: tuple[tuple[str, int, int], ...] = ()

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if r.problem)


def parse_tolerances(items: Sequence[str]) -> dict[str, float]:
    """``["pickscore=0.1", "smoke/blur=0.05"]`` -> {key: delta}; a reward name applies to every suite."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            delta = float(value)
        except ValueError:
            delta = -1.0
        if not sep or not key or delta < 0:
            raise GateInputError(f"--tolerance {item!r}: expected REWARD=DELTA or SUITE/REWARD=DELTA with DELTA >= 0")
        out[key.strip()] = delta
    return out


def load_baseline(path: str | Path) -> Run:
    """A baseline run: its samples when ``samples.jsonl`` is next to results.json, else results only."""
    try:
        run_dir, _ = resolve_run_dir(path)
        with_samples = (run_dir / "samples.jsonl").is_file()
        return load_run(path, samples=with_samples, check_images=False)
    except RunError as exc:
        raise GateInputError(f"baseline: {exc}") from None


def _tolerance_for(key: str, tolerances: dict[str, float]) -> float:
    return tolerances.get(key, tolerances.get(key.split("/", 1)[1], 0.0))


def coverage(baseline: Run, run: Run) -> dict[str, tuple[int, int]]:
    """Per suite: ``(images of the baseline the run also holds, images of the baseline)``."""
    from rtdmd_bench.report.runs import sample_key

    held = {sample_key(s) for s in run.samples}
    out: dict[str, list[int]] = {}
    for s in baseline.samples:
        both_total = out.setdefault(s["suite"], [0, 0])
        both_total[0] += sample_key(s) in held
        both_total[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def _invalid_in_both(baseline: Run, run: Run, key: str) -> tuple[int, int]:
    """Invalid scores of ``key``'s reward among the images both runs hold: ``(run, baseline)``."""
    from rtdmd_bench.report.runs import sample_key

    suite, reward = key.split("/", 1)
    base = {sample_key(s): s for s in baseline.samples if s["suite"] == suite}
    counts = [0, 0]
    for s in run.samples:
        b = base.get(sample_key(s)) if s["suite"] == suite else None
        if b is not None:
            counts[0] += s.get("valid", {}).get(reward) is False
            counts[1] += b.get("valid", {}).get(reward) is False
    return counts[0], counts[1]


def _check_tolerance_keys(tolerances: dict[str, float], baseline: Run) -> None:
    known = set(baseline.entries) | {k.split("/", 1)[1] for k in baseline.entries}
    unknown = sorted(set(tolerances) - known)
    if unknown:
        raise GateInputError(f"--tolerance for {unknown}: not in the baseline (known: {sorted(known)})")


def _paired_result(baseline: Run, run: Run, key: str, tol: float, n_resamples: int, seed: int) -> GateResult:
    diff = compare_entry(baseline, run, key, top=0, n_resamples=n_resamples, seed=seed, training=())
    if diff is None:
        return GateResult(key, tol, None, None, "no image scored validly in both the run and the baseline")
    return _verdict(key, tol, diff.gain, diff.gain_ci)


def _unpaired_result(baseline: Run, run: Run, key: str, tol: float) -> GateResult:
    base, new = baseline.entries[key], run.entries[key]
    if base.get("mean") is None or new.get("mean") is None or not new.get("ci95"):
        return GateResult(key, tol, None, None, "no valid mean/CI to compare")
    sign = 1.0 if new["higher_is_better"] else -1.0
    lo, hi = sorted((sign * (new["ci95"][0] - base["mean"]), sign * (new["ci95"][1] - base["mean"])))
    return _verdict(key, tol, sign * (new["mean"] - base["mean"]), (lo, hi))


def _verdict(key: str, tol: float, gain: float, ci: tuple[float, float]) -> GateResult:
    regressed = gain < -tol and ci[1] < 0
    return GateResult(key, tol, gain, ci, "regressed beyond tolerance" if regressed else "")


def run_gate(baseline: Run, run: Run, tolerances: dict[str, float], *, n_resamples: int = 2000,
             seed: int = 0, allow_partial: bool = False) -> GateReport:
    """Check ``run`` against ``baseline``.

    Args:
        baseline: the committed baseline (samples optional).
        run: the new run (with samples when the baseline has them).
        tolerances: ``reward`` or ``suite/reward`` -> allowed loss (in the reward's units, >= 0; default 0).
        n_resamples: bootstrap resamples of the paired CI.
        seed: bootstrap seed.
        allow_partial: gate on the images both runs hold when the run lacks some baseline images.

    Returns:
        ``GateReport`` (``failures`` empty = pass).

    Raises:
        GateInputError: protocol mismatch, tolerance for an unknown reward, or (without ``allow_partial``) a run
            that does not hold every baseline image.
    """
    _check_tolerance_keys(tolerances, baseline)
    mismatches = find_mismatches(baseline, run)
    if mismatches:
        raise GateInputError("run and baseline differ in protocol:\n  - " + "\n  - ".join(mismatches))
    paired = bool(baseline.samples)
    cover = coverage(baseline, run) if paired else {}
    short = {k: v for k, v in cover.items() if v[0] < v[1]}
    if short and not allow_partial:
        detail = "; ".join(f"{k}: {both} of {total} images ({100 * both / total:.0f}%)"
                           for k, (both, total) in sorted(short.items()))
        raise GateInputError(f"the run does not hold every baseline image ({detail}). Re-run it with the "
                             f"baseline's --limit / --samples-per-prompt, or pass --allow-partial to gate on the "
                             f"images both hold.")
    results = []
    for key in sorted(baseline.entries):
        tol = _tolerance_for(key, tolerances)
        if key not in run.entries:
            results.append(GateResult(key, tol, None, None, "missing from the run"))
            continue
        result = (_paired_result(baseline, run, key, tol, n_resamples, seed) if paired
                  else _unpaired_result(baseline, run, key, tol))
        invalid_run, invalid_base = (_invalid_in_both(baseline, run, key) if paired else
                                     (run.entries[key]["n_invalid"], baseline.entries[key]["n_invalid"]))
        if not result.problem and invalid_run > invalid_base:
            result = GateResult(key, tol, result.gain, result.gain_ci,
                                f"more invalid scores than the baseline ({invalid_run} vs {invalid_base})")
        results.append(result)
    return GateReport(run_label=run.label, baseline_label=baseline.label, paired=paired, results=tuple(results),
                      new_in_run=tuple(sorted(set(run.entries) - set(baseline.entries))),
                      coverage=tuple((k, *v) for k, v in sorted(cover.items())))


def _describe(result: GateResult) -> str:
    if result.gain is None or result.gain_ci is None:
        return f"{result.key}: {result.problem}"
    dec = fmt.decimals_for((result.gain_ci[1] - result.gain_ci[0]) / 2)
    text = (f"{result.key}: gain {fmt.fmt_num(result.gain, dec, signed=True)} "
            f"{fmt.fmt_interval(result.gain_ci, dec)} (tolerance {result.tolerance:g})")
    return text + (f" - {result.problem}" if result.problem else "")


def render_gate(report: GateReport) -> str:
    """Short readable verdict: failures first, then what passed."""
    mode = "paired over prompts" if report.paired else "UNPAIRED (the baseline has no samples.jsonl)"
    lines = [f"rtdmd-bench check: run {report.run_label} vs baseline {report.baseline_label} ({mode}; "
             "gain > 0 = better, 95% CI)"]
    failures = report.failures
    if report.coverage:
        lines.append("coverage: " + ", ".join(f"{k} {both}/{total} baseline images" for k, both, total in report.coverage))
    lines.append(f"FAIL: {len(failures)} regression(s)" if failures else "PASS: no regression beyond tolerance")
    lines += [f"  x {_describe(r)}" for r in failures]
    lines += [f"  ok {_describe(r)}" for r in report.results if not r.problem]
    if report.new_in_run:
        lines.append(f"  (not in the baseline, not checked: {', '.join(report.new_in_run)})")
    return "\n".join(lines) + "\n"
