"""CLI surface: help, list without heavy imports, validate, weights and prompts commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app

runner = CliRunner()
HEAVY = ("torch", "diffusers", "transformers", "open_clip", "peft", "torchvision")


def test_help_lists_every_command():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("eval", "list", "validate", "prompts", "weights", "train", "toy", "leaderboard", "compare",
                "check", "report"):
        assert cmd in res.output


@pytest.mark.parametrize("kind", ["models", "rewards", "suites", "trainers", "benchmarks"])
def test_list_without_heavy_imports(kind):
    code = ("import sys; from rtdmd_bench.cli import app\n"
            f"try:\n    app(['list', '{kind}'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "assert not heavy, heavy\nprint('OK')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-2000:]


def test_list_shows_metadata():
    res = runner.invoke(app, ["list", "models"], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "tiny-flux2" in res.output and "flux2-rtdmd" in res.output
    res = runner.invoke(app, ["list", "rewards"], env={"COLUMNS": "250"})
    assert all(n in res.output for n in ("pickscore", "hpsv3", "geneval2", "ocr")) and "model=ppocrv6-small" in res.output
    assert "unavailable" not in res.output and "later issue" not in res.output  # no planning text for users
    res = runner.invoke(app, ["list", "suits"])
    assert res.exit_code == 2 and "did you mean 'suites'" in res.output


def test_validate_eval_configs(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("model: tiny-flux2\nsuites: [smoke]\nrewards: [saturation]\nlimit: 2\n")
    res = runner.invoke(app, ["validate", str(good)])
    assert res.exit_code == 0, res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tiny-flux2\nsuites: [smoke]\nrewardz: [saturation]\n")
    typo = tmp_path / "typo.yaml"
    typo.write_text("model: tiny-fluxx\nsuites: [smoke]\n")
    res = runner.invoke(app, ["validate", str(good), str(bad), str(typo)])
    assert res.exit_code == 1
    assert "Did you mean 'rewards'" in res.output and "Did you mean 'tiny-flux2'" in res.output


def test_validate_loads_no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("RTDMD_BENCH_WEIGHTS", str(tmp_path / "nowhere"))
    cfg = tmp_path / "paper.yaml"
    cfg.write_text("model: flux2-rtdmd\nbenchmark: rtdmd-paper\nsuites: []\nlimit: 64\n")
    res = runner.invoke(app, ["validate", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "drawbench <- clipscore+aesthetic+pickscore+hpsv2+imagereward" in res.output


def test_trainer_configs_validate_and_count():
    configs = sorted((Path(__file__).parents[1] / "trainers" / "configs").rglob("*.yaml"))
    assert len(configs) >= 10, configs  # 5 backbones x 2 stages at least
    res = runner.invoke(app, ["validate", *map(str, configs)])
    assert res.exit_code == 0, res.output


def test_prompts_import_cli(tmp_path):
    src = Path(__file__).parents[1] / "prompts" / "smoke" / "prompts.jsonl"
    res = runner.invoke(app, ["prompts", "import", "geneval", str(src)])
    assert res.exit_code == 2 and "does not match suite geneval@1" in res.output


def test_weights_make_tiny_and_fetch_offline(tmp_path):
    res = runner.invoke(app, ["weights", "make-tiny", str(tmp_path / "tiny")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "tiny" / "TINY_RANDOM_WEIGHTS").is_file()
    res = runner.invoke(app, ["weights", "fetch", "no-such-model"])
    assert res.exit_code == 2 and "no model or reward" in res.output
