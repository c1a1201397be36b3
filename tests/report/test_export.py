"""``rtdmd-bench export RUN --format csv|jsonl|parquet``: per-sample and aggregate tables; a clear message when the
optional parquet writer is missing."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app

runner = CliRunner()


def test_csv_and_jsonl_tables(make_run, tmp_path):
    run = make_run("a", rewards=("clipscore", "geneval"))
    res = runner.invoke(app, ["export", str(run), "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(run / "export" / "samples.csv")))
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == len(samples) == 12
    assert float(rows[3]["score.clipscore"]) == samples[3]["scores"]["clipscore"] and rows[3]["model"] == "toy-model"
    res = runner.invoke(app, ["export", str(run), "--format", "jsonl", "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    agg = [json.loads(x) for x in (tmp_path / "x" / "results.jsonl").read_text().splitlines()]
    results = json.loads((run / "results.json").read_text())["results"]
    overall = {r["key"]: r for r in agg if r["tag"] is None}
    assert overall["smoke/clipscore"]["mean"] == results["smoke/clipscore"]["mean"]
    assert overall["smoke/clipscore"]["ci95_lo"] == results["smoke/clipscore"]["ci95"][0]
    tags = [r for r in agg if r["key"] == "smoke/geneval" and r["tag"]]
    assert {r["tag"] for r in tags} == set(results["smoke/geneval"]["tags"])


def test_parquet_and_its_missing_dependency(make_run, monkeypatch):
    run = make_run("b")
    pq = pytest.importorskip("pyarrow.parquet")
    res = runner.invoke(app, ["export", str(run), "--format", "parquet"])
    assert res.exit_code == 0, res.output
    table = pq.read_table(run / "export" / "samples.parquet")
    assert table.num_rows == 12 and "score.pickscore" in table.column_names
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if the optional extra were not installed
    res = runner.invoke(app, ["export", str(run), "--format", "parquet"])
    assert res.exit_code == 2 and "needs pyarrow" in res.output and "rtdmd-bench[export]" in res.output
    res = runner.invoke(app, ["export", str(run), "--format", "xlsx"])
    assert res.exit_code == 2 and "unknown format 'xlsx'" in res.output
