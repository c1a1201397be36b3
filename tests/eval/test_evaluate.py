"""End-to-end evaluation on tiny weights: CLI, resume, cache, determinism, bad input."""

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
from rtdmd_bench.eval.schema import validate_results, validate_sample

HERE = Path(__file__).parent
runner = CliRunner()


def run_cli(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


def samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def stable(recs: list[dict]) -> list[dict]:
    """Records without timing and file-time fields (the only things allowed to differ between equivalent runs)."""
    return [{k: v for k, v in r.items() if k not in ("gen_time_s", "image_mtime_ns")} for r in recs]


@pytest.fixture(scope="module")
def base_run(tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "demo"
    res = run_cli("eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny", "--out", str(out),
                  "--limit", "6", "--batch-size", "4", "--no-progress")
    assert res.exit_code == 0, res.output
    return out, res.output


def test_eval_writes_valid_results_and_samples(base_run):
    out, output = base_run
    results = json.loads((out / "results.json").read_text())
    assert validate_results(results) == []
    assert results["tiny_weights"] is True and "TINY RANDOM WEIGHTS" in output
    assert set(results["results"]) == {"smoke/saturation", "smoke/jpeg_compressibility"}
    sat = results["results"]["smoke/saturation"]
    assert sat["n"] == 6 and sat["n_invalid"] == 0 and sat["ci95"][0] <= sat["mean"] <= sat["ci95"][1]
    assert set(sat["tags"]) <= {"object", "counting", "style"}
    assert results["model"]["name"] == "tiny-flux2" and results["model"]["nfe"] == 4
    recs = samples(out)
    assert len(recs) == 6 and all(validate_sample(r) == [] for r in recs)
    assert [(r["prompt_id"], r["sample_idx"]) for r in recs] == [(i, 0) for i in range(6)]
    assert (out / "config.yaml").is_file() and not list((out / "journal").glob("*.jsonl"))
    assert "95% CI" in output


def test_rerun_resumes_without_generating(base_run):
    out, _ = base_run
    before = (out / "samples.jsonl").read_text()
    res = run_cli("eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny", "--out", str(out),
                  "--limit", "6", "--no-progress")
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["images_generated"] == 0
    assert (out / "samples.jsonl").read_text() == before


def test_adding_a_reward_scores_cached_images_only(base_run, tmp_path):
    out, _ = base_run
    plugin = "plugins_for_tests:NanOnOddPrompt"
    sys.path.insert(0, str(HERE))
    try:
        res = run_cli("eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny", "--out", str(out),
                      "--limit", "6", "--rewards", f"saturation,{plugin}", "--no-progress")
    finally:
        sys.path.remove(str(HERE))
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["images_generated"] == 0 and results["run"]["images_scored"] == 6
    entry = results["results"][f"smoke/{plugin}"]
    odd = sum(len(r["prompt"]) % 2 for r in samples(out))
    assert entry["n_invalid"] == odd and entry["n"] == 6 - odd  # NaN: counted, excluded, never averaged
    assert all(r["scores"][plugin] is None for r in samples(out) if len(r["prompt"]) % 2)


def test_corrupt_or_missing_image_is_regenerated_identically(base_run):
    out, _ = base_run
    recs = samples(out)
    (out / recs[0]["image"]).write_bytes(b"garbage")
    (out / recs[1]["image"]).unlink()
    res = run_cli("eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny", "--out", str(out),
                  "--limit", "6", "--no-progress")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "results.json").read_text())["run"]["images_generated"] == 2
    assert stable(samples(out))[:2] == stable(recs)[:2]


def test_batch_size_changes_only_float_rounding(base_run, tmp_path):
    """Seeds never depend on the batch; a different batch size only changes batched-matmul rounding (~1e-6),
    so at most a few pixels may differ by one 8-bit level."""
    import numpy as np
    from PIL import Image

    out, _ = base_run
    other = tmp_path / "b1"
    res = run_cli("eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny", "--out", str(other),
                  "--limit", "6", "--batch-size", "1", "--no-progress")
    assert res.exit_code == 0, res.output
    a, b = samples(other), samples(out)
    assert [r["seed"] for r in a] == [r["seed"] for r in b]
    for ra, rb in zip(a, b):
        pa = np.asarray(Image.open(other / ra["image"]), dtype=np.int16)
        pb = np.asarray(Image.open(out / rb["image"]), dtype=np.int16)
        assert np.abs(pa - pb).max() <= 1 and (pa != pb).mean() < 0.01


def test_different_run_in_out_dir_is_refused_unless_force(base_run):
    out, _ = base_run
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny",
                              "--out", str(out), "--seed", "5", "--limit", "1", "--no-progress"])
    assert res.exit_code == 2 and "holds a different run" in res.output and "seed" in res.output


@pytest.mark.parametrize("args,needle", [
    (["--model", "tiny-flux3"], "Did you mean 'tiny-flux2'"),
    (["--suite", "smok"], "Did you mean 'smoke'"),
    (["--rewards", "pickscor"], "Did you mean 'pickscore'"),
    (["--set", "overrides.stepz=2"], "Did you mean 'overrides.steps'"),
    (["--rewards", "ocr", "--set", "reward_options.ocr.lang=en"], "unknown option(s) ['lang'] for reward 'ocr'"),
    (["--rewards", "ocr", "--set", "reward_options.ocr.model=paddle"], "unknown OCR model 'paddle'"),
    (["--set", "reward_options.ocr.model=ppocrv4-en"], "reward 'ocr' is not scored in this run"),
    (["--suite", "drawbench"], "prompts import drawbench"),
])
def test_bad_names_fail_before_loading_with_help(tmp_path, args, needle):
    base = {"--model": "tiny-flux2", "--suite": "smoke"}
    argv = ["eval", "--weights", "tiny", "--out", str(tmp_path / "x"), "--no-progress"]
    for k, v in base.items():
        if k not in args:
            argv += [k, v]
    res = runner.invoke(app, argv + args)
    assert res.exit_code == 2, res.output
    assert needle in res.output


def test_unwritable_out_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write read-only dirs (root)")
        res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny",
                                  "--out", str(ro / "run")])
        assert res.exit_code == 2 and "not writable" in res.output
    finally:
        ro.chmod(0o700)


def test_unwritable_out_dir_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", "smoke", "--weights", "tiny",
                              "--out", str(f / "run")])
    assert res.exit_code == 2 and "not writable" in res.output


def test_missing_weights_names_files_and_fetch_command(tmp_path):
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", "smoke", "--limit", "1",
                              "--weights", str(tmp_path / "empty"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2, res.output
    assert "rtdmd-bench weights fetch tiny-flux2" in res.output and "missing" in res.output


def _eval_cmd(out: Path, model: str) -> list[str]:
    return [sys.executable, "-m", "rtdmd_bench", "eval", "--model", model, "--suite", "smoke", "--weights", "tiny",
            "--out", str(out), "--samples-per-prompt", "2", "--limit", "5", "--batch-size", "2", "--no-progress"]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
def test_sigkill_at_any_point_then_resume_equals_uninterrupted(tiny_weights, tmp_path):
    ref = tmp_path / "ref"
    subprocess.run(_eval_cmd(ref, "tiny-flux2"), check=True, env=_env(), capture_output=True)
    out = tmp_path / "killed"
    for lines_before_kill in (0, 3):  # before the first journal line (mid-PNG), then mid-run after a resume
        proc = subprocess.Popen(_eval_cmd(out, "plugins_for_tests:SlowTinyFlux2"), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        journal = out / "journal" / "rank-0.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:  # a resuming session first compacts the previous journal into samples.jsonl
                n = len(journal.read_bytes().splitlines())
            except FileNotFoundError:
                n = 0
            pngs = list((out / "images").rglob("*.png")) if (out / "images").exists() else []
            if (lines_before_kill == 0 and pngs) or (lines_before_kill and n >= lines_before_kill):
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    subprocess.run(_eval_cmd(out, "plugins_for_tests:SlowTinyFlux2"), check=True, env=_env(), capture_output=True)
    assert stable(samples(out)) == stable(samples(ref))
    a, b = (json.loads((d / "results.json").read_text())["results"] for d in (out, ref))
    assert a == b


@pytest.mark.slow
def test_one_vs_two_torchrun_processes_identical(tiny_weights, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    outs = {}
    for n in (1, 2):
        out = tmp_path / f"w{n}"
        cmd = [str(torchrun), "--standalone", f"--nproc_per_node={n}", "-m", "rtdmd_bench", "eval",
               "--model", "tiny-sd35", "--suite", "smoke", "--weights", "tiny", "--out", str(out),
               "--limit", "5", "--batch-size", "2", "--no-progress", "--device", "cpu"]
        env = _env()
        env["OMP_NUM_THREADS"] = "1"
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        outs[n] = out
    assert stable(samples(outs[1])) == stable(samples(outs[2]))
    r1, r2 = (json.loads((outs[n] / "results.json").read_text()) for n in (1, 2))
    assert r1["results"] == r2["results"] and r2["run"]["world_size"] == 2
