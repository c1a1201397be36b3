"""Rich tables for run results (used by ``eval`` and training's periodic eval)."""

from __future__ import annotations

from typing import Any


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def results_table(results: dict[str, Any]):
    """One row per suite/reward: headline value, 95% CI over prompts, n, invalid count (fits 80 columns)."""
    from rich.table import Table

    tiny = " — TINY RANDOM WEIGHTS (not real model numbers)" if results.get("tiny_weights") else ""
    model = results.get("model", {})
    entries = list(results.get("results", {}).values())
    macro = any(e["headline"] == "macro_over_tags" for e in entries)
    used = ", ".join(f"{sid} first {s['n_prompts_used']}/{s['n_prompts']}"
                     for sid, s in results.get("suites", {}).items())
    caption = f"prompts: {used}" + ("\n* macro mean over tags (GenEval's official overall)" if macro else "")
    table = Table(title=f"{model.get('name', '?')}: NFE {model.get('nfe', '?')}, "
                        f"{model.get('height', '?')}x{model.get('width', '?')}{tiny}", caption=caption)
    table.add_column("suite")
    table.add_column("reward", overflow="fold")
    for col in ("value", "95% CI", "n", "invalid"):
        table.add_column(col, justify="right", no_wrap=True)
    for e in entries:
        is_macro = e["headline"] == "macro_over_tags"
        value = e["macro_over_tags"] if is_macro else e["mean"]
        ci = e.get("headline_ci95", e["ci95"])
        table.add_row(f"{e['suite']}@{e['suite_version']}",
                      f"{e['reward']}@{e['reward_version']} {'↑' if e['higher_is_better'] else '↓'}",
                      fmt(value) + ("*" if is_macro else ""),
                      f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "—", str(e["n"]), str(e["n_invalid"]))
    return table
