"""``rtdmd-bench export RUN --format csv|parquet|jsonl``: a run's per-sample and aggregate tables for pandas, R,
spreadsheets and SQL.

``samples.<ext>``: one row per image: run, model, suite, suite_version, prompt_id, sample_idx, prompt, tag, seed,
image, image_sha256, then ``score.<reward>``, ``valid.<reward>`` and ``part.<reward>.<part>`` columns.
``results.<ext>``: one row per suite/reward (``tag`` empty) and per suite/reward/tag: mean, ci95_lo/hi, std, n,
n_prompts, n_invalid, macro_over_tags, prompt_level, headline, headline value and CI, units, direction, versions.
CSV and JSONL need nothing beyond Python; Parquet needs pyarrow (``pip install 'rtdmd-bench[export]'``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

FORMATS = ("csv", "jsonl", "parquet")


class ExportError(ValueError):
    """Unsupported format or a missing optional dependency (the message names the install command)."""


def sample_rows(run: Any) -> list[dict[str, Any]]:
    """Flat per-image rows of a loaded ``report.runs.Run`` (columns in a stable order)."""
    rewards = sorted({r for s in run.samples for r in (s.get("scores") or {})})
    rows = []
    for s in run.samples:
        row = {"run": run.label, "model": run.model_name, "suite": s["suite"], "suite_version": s["suite_version"],
               "prompt_id": s["prompt_id"], "sample_idx": s["sample_idx"], "prompt": s["prompt"], "tag": s.get("tag"),
               "seed": s.get("seed"), "image": s["image"], "image_sha256": s["image_sha256"]}
        for r in rewards:
            row[f"score.{r}"] = (s.get("scores") or {}).get(r)
            row[f"valid.{r}"] = (s.get("valid") or {}).get(r)
        for r in rewards:
            for part, value in sorted(((s.get("parts") or {}).get(r) or {}).items()):
                row[f"part.{r}.{part}"] = value
        rows.append(row)
    return rows


def _ci(ci: Any, i: int) -> float | None:
    return ci[i] if isinstance(ci, list) and len(ci) == 2 else None


def result_rows(run: Any) -> list[dict[str, Any]]:
    """One row per suite/reward and per suite/reward/tag."""
    rows = []
    for key, e in sorted(run.entries.items()):
        head = e["macro_over_tags"] if e.get("headline") == "macro_over_tags" else e["mean"]
        base = {"run": run.label, "model": run.model_name, "key": key, "suite": e["suite"],
                "suite_version": e["suite_version"], "reward": e["reward"], "reward_version": e["reward_version"],
                "units": e["units"], "higher_is_better": e["higher_is_better"]}
        rows.append({**base, "tag": None, "mean": e["mean"], "ci95_lo": _ci(e["ci95"], 0), "ci95_hi": _ci(e["ci95"], 1),
                     "std": e["std"], "n": e["n"], "n_prompts": e["n_prompts"], "n_invalid": e["n_invalid"],
                     "macro_over_tags": e["macro_over_tags"], "prompt_level": e["prompt_level"],
                     "headline": e["headline"], "headline_value": head,
                     "headline_ci95_lo": _ci(e.get("headline_ci95"), 0), "headline_ci95_hi": _ci(e.get("headline_ci95"), 1)})
        for tag, t in sorted((e.get("tags") or {}).items()):
            rows.append({**base, "tag": tag, "mean": t["mean"], "ci95_lo": _ci(t["ci95"], 0),
                         "ci95_hi": _ci(t["ci95"], 1), "std": None, "n": t["n"], "n_prompts": None, "n_invalid": None,
                         "macro_over_tags": None, "prompt_level": None, "headline": "mean", "headline_value": t["mean"],
                         "headline_ci95_lo": _ci(t["ci95"], 0), "headline_ci95_hi": _ci(t["ci95"], 1)})
    return rows


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def _parquet_writer():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ExportError("--format parquet needs pyarrow, which is not installed: pip install 'rtdmd-bench[export]' "
                          "(or pip install pyarrow); --format csv and jsonl need nothing extra") from None
    return pyarrow, pyarrow.parquet


def write_table(rows: list[dict[str, Any]], path: Path, fmt: str) -> Path:
    """Write ``rows`` (missing keys as null) to ``path`` in ``fmt``; atomic."""
    from rtdmd_bench.io import atomic_write_bytes, atomic_write_text

    cols = _columns(rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        writer.writerows([{c: r.get(c) for c in cols} for r in rows])
        atomic_write_text(path, buf.getvalue())
    elif fmt == "jsonl":
        atomic_write_text(path, "".join(json.dumps({c: r.get(c) for c in cols}, ensure_ascii=False) + "\n"
                                        for r in rows))
    elif fmt == "parquet":
        pa, pq = _parquet_writer()
        table = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows])
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
    else:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return path


def export_run(run_path: str | Path, fmt: str, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``samples.<fmt>`` and ``results.<fmt>`` of a run into ``out_dir`` (default ``RUN/export``).

    Raises:
        ExportError: unknown format or missing pyarrow (checked before reading the run).
        report.runs.RunError: the run's files are missing or malformed.
    """
    from rtdmd_bench.report.runs import load_run

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        _parquet_writer()
    run = load_run(run_path, check_images=False)
    out = Path(out_dir) if out_dir else run.path / "export"
    return [write_table(sample_rows(run), out / f"samples.{fmt}", fmt),
            write_table(result_rows(run), out / f"results.{fmt}", fmt)]
