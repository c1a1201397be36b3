"""Leaderboard markdown from results.json files plus the published anchors (a pure function of its inputs).

Layout: one section per benchmark (suite), a column per ``suite@version / reward@version`` with its
direction and units, one row per measured run and per published model row. A second table per benchmark
puts each published number next to the run that reproduces it (``models`` in published.yaml), with the
difference and a marker when the published value falls outside the measured 95% CI. Runs on tiny random
weights go to their own section and never meet real numbers or anchors.

Refusals (``LeaderboardError``): one column key with two units or directions, one suite@version with two
different prompt-file hashes, and a published number whose units differ from the measured column.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtdmd_bench.published import Published, PublishedNumber, load_published
from rtdmd_bench.report import fmt
from rtdmd_bench.report.runs import Run, load_run

ColumnKey = tuple[str, str | None, str, str | None]
MARK_OUTSIDE = "⚠ outside CI"
CONTAMINATED = "trained on these prompts"  # eval.contamination.FLAG: the row's model was trained on this suite


class LeaderboardError(ValueError):
    """Inputs that cannot share a leaderboard (the message names the runs and columns)."""


@dataclass(frozen=True)
class Column:
    """A leaderboard column: one suite version scored by one reward version, in one unit."""

    suite: str
    suite_version: str | None
    reward: str
    reward_version: str | None
    units: str
    higher_is_better: bool

    @property
    def key(self) -> ColumnKey:
        return (self.suite, self.suite_version, self.reward, self.reward_version)

    @property
    def title(self) -> str:
        suite = f"{self.suite}@{self.suite_version}" if self.suite_version else self.suite
        reward = f"{self.reward}@{self.reward_version}" if self.reward_version else self.reward
        return f"{suite} / {reward} {fmt.arrow(self.higher_is_better)} ({self.units})"


@dataclass
class PublishedRow:
    """One model row of a published table, restricted to one benchmark."""

    source: str
    model: str
    nfe: int | None
    cfg: Any
    n_prompts: int | None = None
    values: dict[ColumnKey, PublishedNumber] = field(default_factory=dict)


@dataclass
class Section:
    """Everything shown for one benchmark."""

    suite: str
    columns: dict[ColumnKey, Column] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    published: list[PublishedRow] = field(default_factory=list)
    anchors: list[tuple[PublishedNumber, Run, Column]] = field(default_factory=list)


def _entry_value(entry: dict[str, Any]) -> float | None:
    """The headline statistic of a results entry (GenEval: macro over tags)."""
    value = entry.get(entry.get("headline") or "mean")
    return None if value is None else float(value)


def _entry_ci(entry: dict[str, Any]) -> list[float] | None:
    """95% CI of the headline statistic (``headline_ci95``; results without it carry the mean's ``ci95``)."""
    return entry["headline_ci95"] if "headline_ci95" in entry else entry.get("ci95")


def _column_of(entry: dict[str, Any]) -> Column:
    return Column(entry["suite"], entry["suite_version"], entry["reward"], entry["reward_version"],
                  entry["units"], bool(entry["higher_is_better"]))


def collect_sections(runs: Sequence[Run]) -> dict[str, Section]:
    """Group runs by suite and build the measured columns, refusing incompatible columns."""
    sections: dict[str, Section] = {}
    owners: dict[ColumnKey, tuple[Column, str]] = {}
    for run in runs:
        for entry in run.entries.values():
            column = _column_of(entry)
            known = owners.get(column.key)
            if known and known[0] != column:
                raise LeaderboardError(
                    f"column {column.key} has different units/direction in run {known[1]!r} "
                    f"({known[0].units}, {fmt.arrow(known[0].higher_is_better)}) and run {run.label!r} "
                    f"({column.units}, {fmt.arrow(column.higher_is_better)}); bump the reward version when "
                    "a scorer's units change")
            owners[column.key] = (column, run.label)
            section = sections.setdefault(column.suite, Section(column.suite))
            section.columns[column.key] = column
            if run not in section.runs:
                section.runs.append(run)
    _check_suite_hashes(runs)
    return sections


def _check_suite_hashes(runs: Sequence[Run]) -> None:
    seen: dict[str, tuple[str, str]] = {}
    for run in runs:
        for name, info in (run.results.get("suites") or {}).items():
            sha = str((info or {}).get("sha256"))
            if name in seen and seen[name][0] != sha:
                raise LeaderboardError(
                    f"suite {name} has prompt-file sha256 {seen[name][0][:12]}… in run {seen[name][1]!r} but "
                    f"{sha[:12]}… in run {run.label!r}: the same version must mean the same prompts")
            seen.setdefault(name, (sha, run.label))


def attach_published(sections: dict[str, Section], published: Published, runs: Sequence[Run]) -> None:
    """Put published numbers into their benchmark sections, in measured columns where units match."""
    rows: dict[tuple[str, str, str, str], PublishedRow] = {}
    for num in published.numbers:
        section = sections.setdefault(num.prompt_set, Section(num.prompt_set))
        targets = [c for c in section.columns.values() if c.reward == num.metric and c.suite_version is not None]
        if not targets:
            targets = [_published_column(section, num)]
        for column in targets:
            if column.units != num.units:
                raise LeaderboardError(
                    f"published {num.metric} for {num.model!r} [{num.source}] is in units {num.units!r} but "
                    f"column {column.title} is in {column.units!r}; fix published.yaml or the scorer's units")
            row_key = (num.prompt_set, num.source, num.table, num.model)
            row = rows.get(row_key)
            if row is None:
                row = rows[row_key] = PublishedRow(num.source, num.model, num.nfe, num.cfg, num.n_prompts)
                section.published.append(row)
            row.values[column.key] = num
            section.anchors += [(num, run, column) for run in runs
                                if run.model_name in num.models and column.key[:3] in _run_keys(run)]


def _published_column(section: Section, num: PublishedNumber) -> Column:
    key: ColumnKey = (num.prompt_set, None, num.metric, None)
    column = section.columns.get(key)
    if column is None:
        column = section.columns[key] = Column(num.prompt_set, None, num.metric, None, num.units,
                                               num.higher_is_better)
    return column


def _run_keys(run: Run) -> set[tuple[str, str, str]]:
    return {(e["suite"], e["suite_version"], e["reward"]) for e in run.entries.values()}


def _measured_cell(run: Run, column: Column) -> str:
    for entry in run.entries.values():
        if _column_of(entry) == column:
            return fmt.fmt_mean_ci(_entry_value(entry), _entry_ci(entry), entry.get("n"))
    return "–"


def _entry_for(run: Run, column: Column) -> dict[str, Any] | None:
    return next((e for e in run.entries.values() if _column_of(e) == column), None)


def _prompts_used(run: Run, suite: str) -> str:
    """Which prompts a measured row came from: ``N/M`` (the first N of the suite's M) per suite@version."""
    used = [f"{s['n_prompts_used']}/{s['n_prompts']}" + (f" (@{s['version']})" if s.get("version") else "")
            for s in (run.results.get("suites") or {}).values() if s.get("name") == suite]
    return ", ".join(used) or "–"


def _fmt_cfg(cfg: Any) -> str:
    if cfg is None:
        return "–"
    return cfg if isinstance(cfg, str) else f"{float(cfg):g}"


def _fmt_opt(value: Any, spec: str = "g") -> str:
    return "–" if value is None else format(value, spec)


def render_section(section: Section, heading: str) -> list[str]:
    """Markdown lines of one benchmark: main table, then published vs measured."""
    columns = sorted(section.columns.values(), key=lambda c: (c.reward, c.reward_version or "", c.suite_version or ""))
    header = ["Model", "Source", "NFE", "CFG", "images/s", "prompts"] + [c.title for c in columns]
    rows = []
    for run in sorted(section.runs, key=lambda r: (r.model_name, r.label)):
        rs = run.results.get("run") or {}
        ips = rs.get("images_per_s")
        name = run.model_name + (f" ⚠ {CONTAMINATED}" if section.suite in run.trained_on else "")
        rows.append([name, f"measured: {run.label}", _fmt_opt(run.model.get("nfe")),
                     _fmt_cfg(run.model.get("guidance")), "–" if ips is None else f"{ips:.2f}",
                     _prompts_used(run, section.suite)]
                    + [_measured_cell(run, c) for c in columns])
    for prow in section.published:
        rows.append([prow.model, f"published: {prow.source}", _fmt_opt(prow.nfe), _fmt_cfg(prow.cfg), "–",
                     "not stated" if prow.n_prompts is None else str(prow.n_prompts)]
                    + [prow.values[c.key].text if c.key in prow.values else "–"
                       for c in columns])
    lines = [heading, ""] + fmt.md_table(header, rows) + [""]
    if section.anchors:
        lines += _render_anchors(section) + [""]
    return lines


def _render_anchors(section: Section) -> list[str]:
    header = ["Column", "Published row", "Published", "Measured here", "95% CI", "n",
              "Δ (measured − published)", ""]
    rows = []
    for num, run, column in sorted(section.anchors, key=lambda a: (a[2].title, a[0].source, a[0].model, a[1].label)):
        entry = _entry_for(run, column)
        value = None if entry is None else _entry_value(entry)
        ci = None if entry is None else _entry_ci(entry)
        dec = fmt.decimals_for(fmt.halfwidth(ci))
        outside = bool(ci) and not (ci[0] <= num.value <= ci[1])
        delta = None if value is None else value - num.value
        rows.append([column.title, f"{num.model} [{num.source}]", num.text,
                     f"{fmt.fmt_num(value, dec)} ({run.label})", fmt.fmt_interval(ci, dec),
                     "–" if entry is None else str(entry.get("n")), fmt.fmt_num(delta, dec, signed=True),
                     MARK_OUTSIDE if outside else ""])
    return ["Published vs measured here:", ""] + fmt.md_table(header, rows)


def _legend(runs: Sequence[Run], published: Published | None) -> list[str]:
    lines = [
        "# rtdmd-bench leaderboard",
        "",
        "<!-- Generated by `rtdmd-bench leaderboard`; do not edit by hand. "
        "`rtdmd-bench leaderboard --check` fails when this file is stale. -->",
        "",
        "Cells: headline statistic ± half-width of its 95% bootstrap CI over prompts (n = scored images). "
        "prompts: N/M = the first N of the suite's M prompts (the reference caps sets at 64; say which). "
        "↑/↓: higher/lower is better. Columns are keyed by suite@version / reward@version (units); a published "
        "number shares a column only with identical units. –: not measured, or not stated by the source. "
        f"{MARK_OUTSIDE}: the published value lies outside the measured 95% CI.",
        *([f"⚠ {CONTAMINATED}: the model's training prompts overlap this benchmark's (by prompt hash); its "
           "numbers there are not a held-out evaluation."] if any(r.trained_on for r in runs) else []),
        "",
        "Runs on real weights: " + _run_list([r for r in runs if not r.tiny]) + ".",
        "Runs on tiny random weights: " + _run_list([r for r in runs if r.tiny]) + ".",
    ]
    if published is not None:
        lines.append(f"Published anchors: {len(published.numbers)} numbers from {len(published.sources)} "
                     "source(s), listed at the end.")
    return lines + [""]


def _run_list(runs: Sequence[Run]) -> str:
    return ", ".join(f"{r.label} ({r.model_name})" for r in runs) or "none"


def _sources(published: Published) -> list[str]:
    lines = ["## Sources", ""]
    for key, src in published.sources.items():
        note = f" {src['note']}" if src.get("note") else ""
        lines.append(f"- **{key}**: {src['citation']}. <{src['url']}>.{note}")
    return lines + [""]


def render_leaderboard(runs: Sequence[Run], published: Published | None) -> str:
    """The full markdown document (deterministic for the same runs and published file)."""
    runs = sorted(runs, key=lambda r: (r.tiny, r.model_name, r.label))
    _reject_duplicate_labels(runs)
    real = [r for r in runs if not r.tiny]
    tiny = [r for r in runs if r.tiny]
    real_sections = collect_sections(real)
    if published is not None:
        attach_published(real_sections, published, real)
    lines = _legend(runs, published)
    lines += ["## Real weights", ""]
    if not real_sections:
        lines += ["No runs on real weights.", ""]
    for name in sorted(real_sections):
        lines += render_section(real_sections[name], f"### {name}")
    if tiny:
        lines += ["## Tiny random weights (pipeline checks only; never compared with real weights or anchors)", ""]
        tiny_sections = collect_sections(tiny)
        for name in sorted(tiny_sections):
            lines += render_section(tiny_sections[name], f"### {name} (tiny weights)")
    if published is not None:
        lines += _sources(published)
    return "\n".join(lines).rstrip("\n") + "\n"


def _reject_duplicate_labels(runs: Sequence[Run]) -> None:
    labels: dict[str, Path] = {}
    for run in runs:
        if run.label in labels:
            raise LeaderboardError(f"two runs are both named {run.label!r} ({labels[run.label]} and {run.path}); "
                                   "rows are labelled by run directory name, so rename one")
        labels[run.label] = run.path


def build_leaderboard(run_paths: Sequence[str | Path], published_path: str | Path | None) -> str:
    """Load runs (results.json only) and the published file, and render the markdown."""
    runs = [load_run(p, samples=False) for p in run_paths]
    published = load_published(published_path) if published_path is not None else None
    return render_leaderboard(runs, published)


def stale_diff(committed: str, fresh: str, path: str, max_lines: int = 40) -> str:
    """A short unified diff between the committed and regenerated leaderboards ('' when equal)."""
    if committed == fresh:
        return ""
    diff = list(difflib.unified_diff(committed.splitlines(), fresh.splitlines(), f"{path} (committed)",
                                     f"{path} (regenerated)", lineterm=""))
    more = len(diff) - max_lines
    return "\n".join(diff[:max_lines] + ([f"... {more} more diff lines"] if more > 0 else []))
