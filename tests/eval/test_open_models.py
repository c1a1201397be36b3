"""``eval --model`` on a local diffusers folder of every family and on a hub repo id (pre-populated Hugging Face
cache, no network), with the first-class sampling flags; results identify the model without machine paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app
from rtdmd_bench.models import MODELS
from rtdmd_bench.models.family import FAMILIES
from rtdmd_bench.testing import write_hf_cache

runner = CliRunner()
TINY = [f.tiny.name for f in FAMILIES.in_registration_order() if f.tiny is not None]
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def _eval(out: Path, *args: str) -> dict:
    res = runner.invoke(app, ["eval", "--suite", "smoke", "--limit", "1", "--rewards", "saturation", "--out", str(out),
                              "--no-progress", *args])
    assert res.exit_code == 0, res.output
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("name", TINY)
def test_eval_a_diffusers_folder_by_path(tiny_weights, tmp_path, name):
    folder = Path(tiny_weights) / MODELS.spec(name).weights_dir
    results = _eval(tmp_path / "run", "--model", str(folder), "--weights", tiny_weights, "--steps", "2")
    model = results["model"]
    assert model["origin"] == "folder" and model["family"] == MODELS.spec(name).family
    assert model["name"] == f"{folder.name}@sha256:{model['content_sha256'][:12]}" and model["steps"] == 2
    assert model["weights_dir"] is None and tiny_weights not in json.dumps(model)  # no machine-specific path
    assert results["results"]["smoke/saturation"]["n"] == 1


def test_eval_a_hub_id_with_sampling_flags(tiny_weights, tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    write_hf_cache(cache, "acme/sd35-tiny", Path(tiny_weights) / MODELS.spec("tiny-sd35").weights_dir, COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    results = _eval(tmp_path / "run", "--model", "acme/sd35-tiny", "--weights", tiny_weights, "--sampler", "cps",
                    "--sigmas", "1.0,0.6,0.3", "--eta", "0.5", "--guidance", "1.5", "--height", "32", "--width", "32")
    model = results["model"]
    assert (model["name"], model["base"], model["revision"]) == (f"acme/sd35-tiny@{COMMIT[:12]}", "acme/sd35-tiny",
                                                                  COMMIT)
    assert model["sigmas"] == [1.0, 0.6, 0.3, 0.0] and model["steps"] == 3 and model["nfe"] == 6  # two-pass CFG
    assert (model["sampler"], model["eta"], model["guidance"], model["height"]) == ("cps", 0.5, 1.5, 32)
    assert str(cache) not in json.dumps(model)
    assert results["config"]["overrides"]["sigmas"] == [1.0, 0.6, 0.3]


def test_sampling_flag_errors_and_unknown_hub_id(tiny_weights, tmp_path):
    base = ["eval", "--suite", "smoke", "--limit", "1", "--rewards", "saturation", "--weights", "tiny",
            "--no-progress", "--model", "tiny-flux2"]
    res = runner.invoke(app, base + ["--out", str(tmp_path / "a"), "--sigmas", "0.5,0.9"])
    assert res.exit_code == 2 and "--sigmas must be strictly decreasing" in res.output
    res = runner.invoke(app, base + ["--out", str(tmp_path / "b"), "--sampler", "ddim"])
    assert res.exit_code == 2 and "unknown sampler 'ddim'" in res.output
    res = runner.invoke(app, [*base[:-1], "nobody/nothing", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "not in the Hugging Face cache" in res.output and "Traceback" not in res.output


def test_help_and_list_show_the_defaults():
    res = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "250"})
    for flag in ("--steps", "--guidance", "--eta", "--sampler", "--height", "--width", "--sigmas", "--suites-dir"):
        assert flag in res.output
    assert "list families" in res.output
    res = runner.invoke(app, ["list", "families"], env={"COLUMNS": "300"})
    # the table may wrap at the console's width: compare with whitespace runs collapsed
    assert res.exit_code == 0 and "distilled: euler_cfg 4 steps, guidance 1" in " ".join(res.output.split())
    res = runner.invoke(app, ["list", "models"], env={"COLUMNS": "300"})
    assert "steps" in res.output and "eta=0.9" in " ".join(res.output.split())


def test_resume_refuses_a_folder_whose_files_changed(tiny_weights, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(Path(tiny_weights) / MODELS.spec("tiny-flux2").weights_dir, folder)
    args = ["--model", str(folder), "--weights", tiny_weights]
    _eval(tmp_path / "run", *args)
    cfg = folder / "scheduler" / "scheduler_config.json"
    cfg.write_text(cfg.read_text().replace('"shift": 3.0', '"shift": 2.5'))
    res = runner.invoke(app, ["eval", "--suite", "smoke", "--limit", "1", "--rewards", "saturation", "--out",
                              str(tmp_path / "run"), "--no-progress", *args])
    assert res.exit_code == 2 and "files or the hub revision changed" in res.output
