"""Ctrl-C is clean and resumable; GenEval flows through the one evaluation path with its official aggregation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app

HERE = Path(__file__).parent
runner = CliRunner()


@pytest.mark.slow
def test_ctrl_c_finishes_the_batch_and_resumes(tiny_weights, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
               SLOW_MODEL_DELAY="0.5")
    cmd = [sys.executable, "-m", "rtdmd_bench", "eval", "--model", "plugins_for_tests:SlowTinyFlux2", "--suite",
           "smoke", "--weights", "tiny", "--out", str(out), "--batch-size", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = out / "journal" / "rank-0.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (journal.exists() and journal.read_text().count("\n") >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "run the same command again to resume" in err
    lines = journal.read_text().splitlines()
    assert len(lines) % 2 == 0 and len(lines) < 12  # whole batches only, stopped early
    assert all(json.loads(x)["image_sha256"] for x in lines)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["images_generated"] == 12 - len(lines)
    assert len((out / "samples.jsonl").read_text().splitlines()) == 12


def test_prompts_fetch_without_network_says_how_to_import(network_attempts):
    res = runner.invoke(app, ["prompts", "fetch", "drawbench"])
    assert network_attempts  # it really tried (and the guard refused)
    assert res.exit_code == 2
    assert "could not download" in res.output and "prompts import drawbench FILE" in res.output


GENEVAL_ROWS = [
    {"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"},
    {"tag": "counting", "include": [{"class": "cat", "count": 2}], "exclude": [{"class": "cat", "count": 3}],
     "prompt": "a photo of two cats"},
    {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
    {"tag": "position", "include": [{"class": "cup", "count": 1}, {"class": "book", "count": 1,
                                                                   "position": ["left of", 0]}],
     "prompt": "a photo of a book left of a cup"},
]


@pytest.fixture
def mini_geneval(tmp_path, monkeypatch):
    """A 4-prompt GenEval-format suite registered through $RTDMD_BENCH_PROMPTS (a user's own suite)."""
    import hashlib

    d = tmp_path / "prompts" / "mini_geneval"
    d.mkdir(parents=True)
    data = "".join(json.dumps(r) + "\n" for r in GENEVAL_ROWS)
    (d / "prompts.jsonl").write_text(data)
    (d / "suite.yaml").write_text(
        "name: mini_geneval\nversion: '1'\nsplit: test\nformat: geneval_jsonl\nfile: prompts.jsonl\nlocation: repo\n"
        f"sha256: {hashlib.sha256(data.encode()).hexdigest()}\nn_prompts: 4\nimages_per_prompt: 2\n"
        "metadata_fields: [tag, include, exclude]\ntag_field: tag\ndefault_rewards: [geneval]\n")
    from rtdmd_bench.suites import SUITES
    from rtdmd_bench.suites.manifest import read_manifest

    SUITES.add(read_manifest(d / "suite.yaml"))
    yield "mini_geneval"
    SUITES.remove("mini_geneval")


def test_geneval_through_the_harness(tiny_weights, mini_geneval, tmp_path):
    out = tmp_path / "gen"
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", mini_geneval, "--weights", "tiny",
                              "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    e = results["results"]["mini_geneval/geneval"]
    assert e["headline"] == "macro_over_tags" and e["n"] + e["n_invalid"] == 8
    assert set(e["tags"]) == {"single_object", "counting", "colors", "position"}
    assert e["macro_over_tags"] == pytest.approx(sum(t["mean"] for t in e["tags"].values()) / 4)
    assert e["prompt_level"] is not None  # 0/1 scores: fraction of prompts with a correct image
    recs = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert all(r["scores"]["geneval"] in (0.0, 1.0) for r in recs)
    assert all({"correct", "tag", "reason"} <= set(r["extras"]["geneval"]) for r in recs)
    assert "macro mean over tags" in res.output
