"""The run folder as a shared, crash-prone place: one writer, nothing lost, nothing blocking a retry, the
umask respected, resume without re-hashing (issues 14 and 17). Runs on the GPU stand-in plugin at 64x64 with no
wait (fast, and a plugin that imports neither diffusers nor transformers)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app

HERE = Path(__file__).parent
STANDIN = "rtdmd_bench.bench.standin:StandInGenerator"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _fast_standin(monkeypatch):
    monkeypatch.setenv("RTDMD_STANDIN_S_PER_IMAGE", "0")
    monkeypatch.syspath_prepend(str(HERE))


def eval_cli(out: Path, *extra: str, model: str = STANDIN, rewards: str = "saturation"):
    return runner.invoke(app, ["eval", "--model", model, "--suite", "smoke", "--rewards", rewards, "--limit", "4",
                               "--batch-size", "2", "--set", "overrides.height=64", "--set", "overrides.width=64",
                               "--out", str(out), "--no-progress", *extra])


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def samples(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "run"
    res = eval_cli(out)
    assert res.exit_code == 0, res.output
    return out


def test_second_writer_is_refused_with_the_holders_pid(tmp_path):
    from rtdmd_bench.eval.rundir import RunLock

    out = tmp_path / "run"
    lock = RunLock(out)
    lock.acquire()
    try:
        res = eval_cli(out)
        assert res.exit_code == 2, res.output
        assert "being written by another rtdmd-bench process" in res.output and f"pid {os.getpid()}" in res.output
        assert not (out / "config.yaml").exists()
    finally:
        lock.release()
    assert eval_cli(out).exit_code == 0  # released: the same command now runs


def test_failed_validation_writes_nothing(tmp_path):
    out = tmp_path / "run"
    res = eval_cli(out, model="tiny-flux3")
    assert res.exit_code == 2 and "Did you mean 'tiny-flux2'" in res.output
    res = eval_cli(out, "--weights", str(tmp_path / "no-weights"), model="tiny-flux2")
    assert res.exit_code == 2 and "weights fetch tiny-flux2" in res.output
    res = eval_cli(out, "--lora", str(tmp_path / "missing.safetensors"))
    assert res.exit_code == 2 and "missing.safetensors" in res.output
    res = eval_cli(out, rewards="geneval")  # smoke has no GenEval metadata: refused in the plan
    assert res.exit_code == 2 and "reads the per-prompt field(s)" in res.output and "include" in res.output
    assert not (out / "config.yaml").exists()
    assert eval_cli(out).exit_code == 0


def test_crash_before_the_first_image_does_not_block_the_corrected_retry(tmp_path, monkeypatch):
    out = tmp_path / "run"
    res = eval_cli(out, model="plugins_for_tests:FailsOnCall")  # crashes in its first generate call
    assert res.exit_code != 0 and (out / "config.yaml").is_file()
    assert json.loads((out / "model.json").read_text())["height"] == 64  # described when built, before the crash
    assert eval_cli(out, "--seed", "3").exit_code == 0  # nothing journaled: the provisional config is replaced

    monkeypatch.setenv("FAIL_ON_CALL", "2")
    other = tmp_path / "other"
    res = eval_cli(other, model="plugins_for_tests:FailsOnCall")  # one batch of 2 journaled, then a crash
    assert res.exit_code != 0
    res = eval_cli(other, "--seed", "3")
    assert res.exit_code == 2 and "holds a different run" in res.output  # its images are protected


def test_model_json_written_at_build_and_recomputed_when_missing(finished):
    described = json.loads((finished / "model.json").read_text())
    assert described["height"] == 64 and described["sampler"] == "standin"
    (finished / "model.json").unlink()
    assert eval_cli(finished).exit_code == 0
    assert results(finished)["model"] == described and (finished / "model.json").is_file()


def test_resume_of_a_complete_run_keeps_its_throughput(finished):
    first = results(finished)["run"]
    assert first["images_per_s"] > 0 and first["throughput_from"] is None
    assert "scoring" in first["images_per_s_includes"] and first["png_format"]["filter"] == "sub"
    assert eval_cli(finished).exit_code == 0
    again = results(finished)["run"]
    assert again["images_generated"] == 0 and again["images_per_s"] == first["images_per_s"]
    assert again["profile_s"] == first["profile_s"] and again["throughput_from"]


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_output_files_respect_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        out = tmp_path / "run"
        assert eval_cli(out).exit_code == 0
    finally:
        os.umask(old)
    files = [out / "samples.jsonl", out / "results.json", out / "model.json", out / "config.yaml",
             next((out / "images").rglob("*.png"))]
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o666 & ~mask}


def test_resume_trusts_size_and_mtime_and_verify_images_rehashes(finished, monkeypatch):
    import rtdmd_bench.io as io_mod

    hashed = []
    real = io_mod.sha256_file
    monkeypatch.setattr(io_mod, "sha256_file",
                        lambda p, *a: (hashed.append(Path(p)) if Path(p).suffix == ".png" else None) or real(p, *a))
    recs = samples(finished)
    assert all(r["image_size"] > 0 and r["image_mtime_ns"] > 0 for r in recs)
    assert eval_cli(finished).exit_code == 0 and hashed == []  # nothing changed: nothing re-hashed

    touched = finished / recs[0]["image"]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert eval_cli(finished).exit_code == 0 and hashed == [touched]  # re-hashed, verified, cache refreshed
    assert samples(finished)[0]["image_mtime_ns"] == touched.stat().st_mtime_ns
    hashed.clear()
    assert eval_cli(finished).exit_code == 0 and hashed == []

    st = touched.stat()  # same size, same mtime, different bytes: only --verify-images can notice
    touched.write_bytes(bytes(st.st_size))
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert eval_cli(finished).exit_code == 0 and results(finished)["run"]["images_generated"] == 0
    res = eval_cli(finished, "--verify-images")
    assert res.exit_code == 0 and len(hashed) == len(recs) and results(finished)["run"]["images_generated"] == 1
    assert samples(finished)[0]["image_sha256"] == recs[0]["image_sha256"]  # regenerated bit-identically


def test_scorer_failure_keeps_finished_batches_and_only_complete_images(tmp_path):
    from rtdmd_bench.io import sha256_file

    out = tmp_path / "run"
    res = eval_cli(out, rewards="plugins_for_tests:RaisesOnSecondBatch")
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "reward 'plugins_for_tests:RaisesOnSecondBatch' failed on a batch of suite 'smoke'" \
        in text and "simulated scorer failure" in text and "Traceback" not in res.output
    lines = [json.loads(x) for x in (out / "journal" / "rank-0.jsonl").read_text().splitlines()]
    assert [r["prompt_id"] for r in lines] == [0, 1]  # the first batch of 2, nothing after the failure
    assert all(sha256_file(out / r["image"]) == r["image_sha256"] for r in lines)
    assert not list(out.rglob("*.tmp"))


def test_quiet_hf_imports_neither_library_for_a_plugin_generator(tmp_path):
    code = ("import sys, json\n"
            "from rtdmd_bench.eval.config import EvalConfig, ModelOverrides\n"
            "from rtdmd_bench.eval.runner import evaluate\n"
            f"evaluate(EvalConfig(model={STANDIN!r}, suites=('smoke',), rewards=('saturation',), limit=2,\n"
            f"         overrides=ModelOverrides(height=32, width=32), device='cpu', out={str(tmp_path / 'r')!r}))\n"
            "print(json.dumps([m for m in ('diffusers', 'transformers') if m in sys.modules]))\n")
    env = dict(os.environ, RTDMD_STANDIN_S_PER_IMAGE="0")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary", b"- a\n- list\n", b"{unclosed: [\n"])
def test_unreadable_config_yaml_in_out_is_one_line(finished, content):
    (finished / "config.yaml").write_bytes(content)
    res = eval_cli(finished)
    assert res.exit_code == 2 and "config.yaml" in res.output and "Traceback" not in res.output, res.output


def test_unreadable_model_json_is_rebuilt(finished):
    (finished / "model.json").write_text("[not, a, model")
    res = eval_cli(finished)
    assert res.exit_code == 0, res.output
    assert results(finished)["model"]["name"] and json.loads((finished / "model.json").read_text())["name"]


def test_samples_jsonl_that_is_a_folder_is_one_line(finished):
    (finished / "samples.jsonl").unlink()
    (finished / "samples.jsonl").mkdir()
    res = eval_cli(finished)
    assert res.exit_code == 2 and "samples.jsonl" in res.output and "Traceback" not in res.output, res.output


def test_nan_in_a_score_part_makes_the_image_invalid(tmp_path):
    out = tmp_path / "run"
    res = eval_cli(out, rewards="plugins_for_tests:NanPartOnOdd")
    assert res.exit_code == 0, res.output
    entry = results(out)["results"]["smoke/plugins_for_tests:NanPartOnOdd"]
    odd = [s for s in samples(out) if len(s["prompt"]) % 2 == 1]
    assert odd and entry["n_invalid"] == len(odd) and entry["n"] == 4 - len(odd)


def test_progress_eta_is_a_time_after_the_first_batch(monkeypatch):
    import rtdmd_bench.eval.runner as runner_mod

    clock = iter([0.0, 10.0, 12.0, 14.0])  # start, then one batch every 2 s after a slow first one
    monkeypatch.setattr(runner_mod.time, "perf_counter", lambda: next(clock))
    bars = runner_mod._Progress(True, 8, 0)
    etas = []
    for _ in range(3):
        bars.advance("gen", 2)
        etas.append(bars.bar.tasks[bars.gen].fields["eta"])
    bars.stop()
    assert etas == ["ETA 0:00:30", "ETA 0:00:04", "ETA 0:00:02"]  # never "-:--:--"
