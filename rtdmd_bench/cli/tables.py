"""Rich tables for run results (used by ``eval`` and training's periodic eval)."""

from __future__ import annotations

from typing import Any


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def results_table(results: dict[str, Any]):
    """One row per suite/reward: headline value, 95% CI over prompts, n, invalid count."""
    from rich.table import Table

    tiny = " — TINY RANDOM WEIGHTS (not real model numbers)" if results.get("tiny_weights") else ""
    model = results.get("model", {})
    table = Table(title=f"{model.get('name', '?')}: NFE {model.get('nfe', '?')}, "
                        f"{model.get('height', '?')}x{model.get('width', '?')}{tiny}")
    for col in ("suite", "reward", "", "mean", "95% CI", "n", "invalid", "note"):
        table.add_column(col, justify="right" if col in ("mean", "95% CI", "n", "invalid") else "left")
    for e in results.get("results", {}).values():
        value = e["macro_over_tags"] if e["headline"] == "macro_over_tags" else e["mean"]
        ci = e["ci95"]
        note = "macro over tags" if e["headline"] == "macro_over_tags" else ""
        table.add_row(f"{e['suite']}@{e['suite_version']}", f"{e['reward']}@{e['reward_version']}",
                      "↑" if e["higher_is_better"] else "↓", fmt(value),
                      f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "—", str(e["n"]), str(e["n_invalid"]), note)
    return table
