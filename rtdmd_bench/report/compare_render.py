"""Plain-text (markdown-table) rendering of a ``Comparison`` for the terminal and for CI logs."""

from __future__ import annotations

from rtdmd_bench.report import fmt
from rtdmd_bench.report.compare import Comparison, HackingCheck, PromptDiff, RewardDiff

PROMPT_CHARS = 70


def _dec(diff: RewardDiff) -> int:
    return fmt.decimals_for(fmt.halfwidth(diff.stats.ci))


def _summary_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for d in cmp.rewards:
        dec = _dec(d)
        mc = "–" if d.mcnemar is None else (f"{fmt.fmt_p(d.mcnemar.p_exact)} / {fmt.fmt_p(d.mcnemar.p_mid)} "
                                             f"(lost {d.mcnemar.a_only}, gained {d.mcnemar.b_only})")
        rows.append([d.key, fmt.arrow(d.higher_is_better), d.units, str(d.stats.n), str(d.n_images),
                     fmt.fmt_num(d.stats.mean_a, dec), fmt.fmt_num(d.stats.mean_b, dec),
                     fmt.fmt_num(d.stats.diff, dec, signed=True), fmt.fmt_interval(d.stats.ci, dec),
                     fmt.fmt_p(d.stats.p_value), mc, d.verdict, d.role or "–"])
    return rows


def _tag_rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for d in cmp.rewards:
        for t in d.tags:
            dec = fmt.decimals_for(fmt.halfwidth(t.stats.ci))
            rows.append([d.key, t.tag, str(t.stats.n), fmt.fmt_num(t.stats.mean_a, dec),
                         fmt.fmt_num(t.stats.mean_b, dec), fmt.fmt_num(t.stats.diff, dec, signed=True),
                         fmt.fmt_interval(t.stats.ci, dec), fmt.fmt_p(t.stats.p_value)])
    return rows


def _short(text: str) -> str:
    return text if len(text) <= PROMPT_CHARS else text[: PROMPT_CHARS - 1] + "…"


def _prompt_rows(prompts: tuple[PromptDiff, ...], dec: int) -> list[list[str]]:
    return [[str(p.prompt_id), p.tag or "–", fmt.fmt_num(p.a, dec), fmt.fmt_num(p.b, dec),
             fmt.fmt_num(p.gain, dec, signed=True), _short(p.prompt)] for p in prompts]


def _hacking_lines(h: HackingCheck, cmp: Comparison) -> list[str]:
    by_key = {d.key: d for d in cmp.rewards}

    def describe(key: str) -> str:
        d = by_key[key]
        dec = _dec(d)
        lo, hi = d.gain_ci
        return f"{key} gain {fmt.fmt_num(d.gain, dec, signed=True)} [{fmt.fmt_num(lo, dec)}, {fmt.fmt_num(hi, dec)}]"

    lines = [f"## Reward-hacking check (training rewards of {cmp.b_label}: {', '.join(h.training_rewards)})", ""]
    rows = [[d.key, d.role or "–", fmt.fmt_num(d.gain, _dec(d), signed=True),
             fmt.fmt_interval(d.gain_ci, _dec(d)), d.verdict] for d in cmp.rewards]
    lines += fmt.md_table(["suite/reward", "role", "gain (+ = better)", "95% CI", "verdict"], rows) + [""]
    if h.not_evaluated:
        lines.append(f"Training rewards not evaluated in these runs: {', '.join(h.not_evaluated)}.")
    if h.flagged:
        lines.append("FLAG: proxy up, held-out down - possible reward hacking.")
        lines += [f"  proxy up: {describe(k)}" for k in h.proxies_up]
        lines += [f"  held-out down: {describe(k)}" for k in h.held_out_down]
    else:
        lines.append("No flag: no training reward improved while a held-out reward got worse "
                     "(each judged by its 95% CI excluding zero).")
    return lines + [""]


def render_comparison(cmp: Comparison) -> str:
    """The full text report of ``rtdmd-bench compare``."""
    lines = [f"# {cmp.b_label} (B) vs {cmp.a_label} (A)", "",
             f"Paired over prompts: B − A with a 95% bootstrap CI ({cmp.n_resamples} resamples, seed {cmp.seed}); "
             "p: two-sided sign-flip test; McNemar (exact / mid-p) for 0/1 scores over matched images.", ""]
    if cmp.tiny:
        lines += ["TINY RANDOM WEIGHTS: these runs are harness checks, not real model numbers.", ""]
    if cmp.trained_on:
        lines += ["WARNING: trained on these prompts (the model was trained on prompts of the evaluated suite; "
                  "its numbers there are not held out):"]
        lines += [f"  - {t}" for t in cmp.trained_on] + [""]
    if cmp.mismatches:
        lines += ["WARNING: compared despite protocol differences (--allow-mismatch):"]
        lines += [f"  - {m}" for m in cmp.mismatches] + [""]
    if cmp.only_a or cmp.only_b:
        lines += [f"Unmatched images: {cmp.only_a} only in A, {cmp.only_b} only in B (left out).", ""]
    header = ["suite/reward", "dir", "units", "prompts", "images", "A", "B", "B − A", "95% CI", "p",
              "McNemar p (exact / mid)", "verdict", "role"]
    lines += fmt.md_table(header, _summary_rows(cmp)) + [""]
    tag_rows = _tag_rows(cmp)
    if tag_rows:
        lines += ["## Per tag", ""]
        lines += fmt.md_table(["suite/reward", "tag", "prompts", "A", "B", "B − A", "95% CI", "p"], tag_rows) + [""]
    for d in cmp.rewards:
        dec = _dec(d)
        for title, prompts in (("most improved", d.improved), ("most regressed", d.regressed)):
            if prompts:
                lines += [f"## {d.key}: {title} prompts", ""]
                lines += fmt.md_table(["prompt_id", "tag", "A", "B", "gain", "prompt"], _prompt_rows(prompts, dec))
                lines += [""]
    if cmp.hacking is not None:
        lines += _hacking_lines(cmp.hacking, cmp)
    return "\n".join(lines).rstrip("\n") + "\n"
