"""Plugins without forking: a distribution on the path with entry points (``rtdmd_bench.models|rewards|suites``)
appears in ``list`` and evaluates; a broken one is reported, never breaking the built-ins. User suites via
``prompts add`` + ``--suites-dir`` are recorded as user suites."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app

runner = CliRunner()
PLUGIN = '''
from pathlib import Path

import torch

from rtdmd_bench.models.spec import ModelSpec
from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.spec import RewardSpec

MODEL = ModelSpec(name="acme-tiny", target="rtdmd_bench.models.flux2_klein:Flux2KleinGenerator", family="flux2_klein",
                  description="Acme's distilled model", weights_dir="models/tiny-flux2", hub_id="acme/tiny", tiny=True,
                  height=64, width=64, dtype="float32", sampler="euler_cfg", steps=2, eta=0.0,
                  extra=(("max_sequence_length", 32),))


class Brightness(Reward):
    spec = RewardSpec(name="acme_brightness", target="", description="mean pixel value", version="acme-1",
                      units="fraction", value_range=(0.0, 1.0), needs_prompt=False)

    def score(self, images, prompts, metadata):
        s = images.mean(dim=(1, 2, 3))
        return RewardOutput(scores=s, valid=torch.ones_like(s, dtype=torch.bool))


SUITE = Path(__file__).parent / "acme_prompts"
'''
ENTRY_POINTS = """[rtdmd_bench.models]
acme-tiny = acme_plugin:MODEL

[rtdmd_bench.rewards]
acme_brightness = acme_plugin:Brightness

[rtdmd_bench.suites]
acme_prompts = acme_plugin:SUITE
broken = acme_plugin:NOT_THERE
"""


@pytest.fixture
def installed_plugin(tmp_path):
    """A distribution ``acme-plugin`` installed on sys.path (a real dist-info with entry_points.txt)."""
    from rtdmd_bench.models import MODELS
    from rtdmd_bench.rewards import REWARDS
    from rtdmd_bench.suites import SUITES

    site = tmp_path / "site"
    pkg = site / "acme_plugin"
    (pkg / "acme_prompts").mkdir(parents=True)
    (pkg / "__init__.py").write_text(PLUGIN)
    (pkg / "acme_prompts" / "prompts.txt").write_text("a red ball\na blue cube\na green cone\n")
    (pkg / "acme_prompts" / "suite.yaml").write_text(
        "name: acme_prompts\nversion: '1'\nformat: txt\nfile: prompts.txt\nlocation: repo\nn_prompts: 3\n"
        "default_rewards: [acme_brightness]\nuser_suite: true\n")
    dist = site / "acme_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    sys.path.insert(0, str(site))
    regs = (MODELS, REWARDS, SUITES)
    try:
        with pytest.warns(UserWarning, match="broken"):
            for reg in regs:
                reg.reload_plugins()
        yield
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("acme_plugin", None)
        for reg in regs:
            reg.reload_plugins()


def test_entry_point_plugins_are_listed_and_evaluate(tiny_weights, installed_plugin, tmp_path):
    res = runner.invoke(app, ["list", "models"], env={"COLUMNS": "300"})
    assert res.exit_code == 0 and "acme-tiny" in res.output and "(plugin: acme-plugin)" in res.output
    res = runner.invoke(app, ["list", "suites"], env={"COLUMNS": "300"})
    assert "acme_prompts" in res.output and "broken" in res.output and "failed to load" in res.output
    assert "smoke" in res.output  # built-ins intact
    out = tmp_path / "run"
    res = runner.invoke(app, ["eval", "--model", "acme-tiny", "--suite", "acme_prompts", "--weights", "tiny",
                              "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    entry = results["results"]["acme_prompts/acme_brightness"]
    assert entry["n"] == 3 and entry["reward_version"] == "acme-1" and results["model"]["name"] == "acme-tiny"
    assert results["model"]["steps"] == 2 and results["suites"]["acme_prompts@1"]["user_suite"] is True


def test_prompts_add_creates_a_user_suite(tiny_weights, tmp_path):
    from rtdmd_bench.suites import SUITES

    src = tmp_path / "mine.jsonl"
    src.write_text('{"prompt": "a cat", "tag": "animal"}\n{"prompt": "a dog", "tag": "animal"}\n'
                   '{"prompt": "a car", "tag": "object"}\n')
    suites = tmp_path / "suites"
    try:
        res = runner.invoke(app, ["prompts", "add", "my_set", str(src), "--rewards", "saturation",
                                  "--suites-dir", str(suites)])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["prompts", "add", "my_set", str(src), "--suites-dir", str(suites)])
        assert res.exit_code == 2 and "exists already" in res.output
        SUITES.remove("my_set")  # as in a fresh process: only --suites-dir finds it
        out = tmp_path / "run"
        res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", "my_set", "--suites-dir", str(suites),
                                  "--weights", "tiny", "--out", str(out), "--no-progress"])
        assert res.exit_code == 0, res.output
        suite = json.loads((out / "results.json").read_text())["suites"]["my_set@1"]
        import hashlib

        assert suite["user_suite"] is True and suite["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        entry = json.loads((out / "results.json").read_text())["results"]["my_set/saturation"]
        assert set(entry["tags"]) == {"animal", "object"}
    finally:
        SUITES.remove("my_set")
    res = runner.invoke(app, ["eval", "--suite", "smoke", "--suites-dir", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a directory" in res.output
    assert Path(suites / "my_set" / "suite.yaml").is_file()
