"""Rich tables of the CLI: run results (``eval``), registries (``list``) and the toy benchmark, readable at 80
columns: names never truncate, long text wraps, and a table too wide for the terminal is split by columns."""

from __future__ import annotations

from collections.abc import Sequence
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


def _cell_width(text: str) -> int:
    return max((len(line) for line in str(text).splitlines()), default=0)


def fitted_tables(title: str, key: str, columns: Sequence[str], rows: Sequence[Sequence[str]], width: int,
                  right: bool = False) -> list:
    """Tables showing ``rows`` (``[key value, *column values]``) that each fit ``width``: the key column and
    every cell stay on one line; the value columns are split over as many tables as needed (key repeated)."""
    from rich.table import Table
    from rich.text import Text

    def col_width(i: int, name: str) -> int:
        return max([len(name)] + [_cell_width(r[i]) for r in rows]) + 3  # padding + border

    key_w = col_width(0, key) + 1
    groups, current, used = [], [], key_w
    for i, name in enumerate(columns, start=1):
        w = col_width(i, name)
        if current and used + w > width:
            groups.append(current)
            current, used = [], key_w
        current.append(i)
        used += w
    groups.append(current)
    tables = []
    for n, group in enumerate(groups):
        suffix = f" ({n + 1}/{len(groups)})" if len(groups) > 1 else ""
        table = Table(title=Text(title + suffix))  # literal text: "E_p~[r]" is not rich markup
        table.add_column(key, style="bold", no_wrap=True)
        for i in group:
            table.add_column(columns[i - 1], no_wrap=True, justify="right" if right else "left")
        for r in rows:
            table.add_row(r[0], *(r[i] for i in group))
        tables.append(table)
    return tables


def registry_listing(kind: str, specs: Sequence[Any], width: int) -> list:
    """``rtdmd-bench list`` output: a table of names and metadata with the descriptions in a wrapping last column,
    or, when the terminal is too narrow for a readable description column, one block per entry (name and
    metadata on a line, the description wrapped and indented below)."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    columns = []
    for spec in specs:
        columns += [k for k in spec.summary() if k not in columns]
    rows = [[spec.name, *(spec.summary().get(c, "") for c in columns)] for spec in specs]
    fixed = sum(max([len(c)] + [_cell_width(r[i + 1]) for r in rows]) + 3 for i, c in enumerate(columns))
    fixed += max(len(r[0]) for r in rows) + 4 if rows else 0
    if width - fixed >= 40:
        table = Table(title=f"{len(specs)} {kind}")
        table.add_column("name", style="bold", no_wrap=True)
        for c in columns:
            table.add_column(c, no_wrap=True)
        table.add_column("description", ratio=1)
        for spec, row in zip(specs, rows):
            table.add_row(*row, spec.description)
        return [table]
    out: list = [Text(f"{len(specs)} {kind}", style="bold")]
    for spec, row in zip(specs, rows):
        meta = "  ".join(f"{c}={v}" for c, v in zip(columns, row[1:]) if v not in ("", None))
        out.append(Text.assemble((row[0], "bold"), "  ", (meta, "dim")))
        out.append(Padding(Text(spec.description), (0, 0, 0, 4)))
    return out
