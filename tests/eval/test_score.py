"""``rtdmd-bench score``: images made elsewhere get exactly eval's scores, aggregation and run layout (GenEval's
official output layout, the harness's own, a flat folder with a mapping), resume, and mismatches found before any
scorer loads; compare/check/leaderboard accept the run."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app
from rtdmd_bench.eval.schema import validate_results, validate_sample

runner = CliRunner()
ROWS = [
    {"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"},
    {"tag": "counting", "include": [{"class": "cat", "count": 2}], "prompt": "a photo of two cats"},
    {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
    {"tag": "single_object", "include": [{"class": "cup", "count": 1}], "prompt": "a photo of a cup"},
]
STATS = ("mean", "ci95", "n", "n_prompts", "n_invalid", "tags", "macro_over_tags", "prompt_level", "headline_ci95")


def samples(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from rtdmd_bench.suites import SUITES
    from rtdmd_bench.suites.manifest import read_manifest
    from rtdmd_bench.testing import write_geneval_suite

    manifest = write_geneval_suite(tmp_path_factory.mktemp("prompts"), "score_geneval", ROWS,
                                   default_rewards=("geneval", "saturation"))
    SUITES.add(read_manifest(manifest))
    yield "score_geneval"
    SUITES.remove("score_geneval")


@pytest.fixture(scope="module")
def eval_run(tiny_weights, suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("score") / "eval"
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", suite, "--weights", "tiny", "--out", str(out),
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    return out


def geneval_layout(run: Path, dest: Path) -> Path:
    """The run's images as GenEval's generation script writes them, with the folder indices in another order (the
    official prompt file's order may differ from the suite's: folders are matched by their metadata)."""
    for rec in samples(run):
        index = len(ROWS) - 1 - rec["prompt_id"]
        folder = dest / f"{index:05d}"
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        (folder / "metadata.jsonl").write_text(json.dumps(ROWS[rec["prompt_id"]]))
        shutil.copyfile(run / rec["image"], folder / "samples" / f"{rec['sample_idx']:05d}.png")
        shutil.copyfile(run / rec["image"], folder / "grid.png")
    return dest


def _score(images: Path, out: Path, *args: str):
    return runner.invoke(app, ["score", str(images), "--suite", "score_geneval", "--weights", "tiny", "--out", str(out),
                               *args])


def test_score_on_geneval_official_layout_equals_the_eval_run(eval_run, tmp_path):
    images = geneval_layout(eval_run, tmp_path / "geneval_out")
    out = tmp_path / "scored"
    res = _score(images, out)
    assert res.exit_code == 0, res.output
    ref, got = json.loads((eval_run / "results.json").read_text()), json.loads((out / "results.json").read_text())
    assert validate_results(got) == [] and all(validate_sample(r) == [] for r in samples(out))
    assert set(got["results"]) == set(ref["results"]) == {"score_geneval/geneval", "score_geneval/saturation"}
    for key in ref["results"]:
        assert {k: got["results"][key][k] for k in STATS} == {k: ref["results"][key][k] for k in STATS}, key
    by_key = {(r["prompt_id"], r["sample_idx"]): r for r in samples(eval_run)}
    for r in samples(out):
        assert r["scores"] == by_key[(r["prompt_id"], r["sample_idx"])]["scores"]
        assert r["seed"] is None and r["source"].endswith(f"samples/{r['sample_idx']:05d}.png")
    model = got["model"]
    assert model["origin"] == "external images" and model["layout"] == "geneval" and model["n_images"] == 8
    assert str(tmp_path) not in json.dumps(model) and got["tiny_weights"] is True
    again = _score(images, out)  # resume: nothing to score
    assert again.exit_code == 0 and json.loads((out / "results.json").read_text())["run"]["images_scored"] == 0

    # the run works with the report commands
    res = runner.invoke(app, ["compare", str(eval_run), str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["leaderboard", str(eval_run), str(out), "--out", str(tmp_path / "lb.md"),
                              "--no-published"])
    assert res.exit_code == 0 and "external images" in (tmp_path / "lb.md").read_text()
    res = runner.invoke(app, ["check", str(out), "--baseline", str(eval_run)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", str(out), "--compare", str(eval_run), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0 and "external images" in (tmp_path / "r.html").read_text()


def test_harness_layout_flat_mapping_and_added_reward(eval_run, tmp_path):
    out = tmp_path / "harness"
    res = _score(eval_run, out, "--rewards", "saturation")
    assert res.exit_code == 0, res.output
    got = json.loads((out / "results.json").read_text())
    assert got["model"]["generated_by"]["name"] == "tiny-flux2" and got["model"]["layout"] == "harness"
    ref = json.loads((eval_run / "results.json").read_text())["results"]["score_geneval/saturation"]
    assert got["results"]["score_geneval/saturation"]["mean"] == ref["mean"]
    res = _score(eval_run, out, "--rewards", "saturation,jpeg_compressibility")
    assert res.exit_code == 0 and json.loads((out / "results.json").read_text())["run"]["images_scored"] == 8

    flat = tmp_path / "flat"
    flat.mkdir()
    with open(flat / "map.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "prompt"])
        for i, rec in enumerate(samples(eval_run)):
            shutil.copyfile(eval_run / rec["image"], flat / f"img{i}.png")
            w.writerow([f"img{i}.png", rec["prompt"]])
    res = _score(flat, tmp_path / "flat_run", "--rewards", "saturation", "--mapping", str(flat / "map.csv"))
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "flat_run" / "results.json").read_text())["results"]["score_geneval/saturation"]
    assert got["mean"] == ref["mean"] and got["ci95"] == ref["ci95"]


def test_mismatching_folders_fail_before_any_scorer_loads(eval_run, tmp_path, monkeypatch):
    import rtdmd_bench.rewards as rewards

    monkeypatch.setattr(rewards, "build", lambda *a, **k: pytest.fail("a scorer was loaded"))
    images = geneval_layout(eval_run, tmp_path / "g")
    stray = images / "00099"
    (stray / "samples").mkdir(parents=True)
    (stray / "metadata.jsonl").write_text(json.dumps({**ROWS[0], "prompt": "a photo of a unicorn"}))
    (stray / "samples" / "00000.png").write_bytes((images / "00000" / "grid.png").read_bytes())
    res = _score(images, tmp_path / "x")
    assert res.exit_code == 2, res.output
    assert "does not match suite 'score_geneval': 1 of 9 entries" in res.output and "a photo of a unicorn" in res.output
    assert not (tmp_path / "x").exists()

    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "map.jsonl").write_text(json.dumps({"file": "../secret.png", "prompt": ROWS[0]["prompt"]}) + "\n")
    res = _score(flat, tmp_path / "y", "--mapping", str(flat / "map.jsonl"))
    assert res.exit_code == 2 and "points outside the images folder" in res.output
    res = _score(tmp_path / "nowhere", tmp_path / "z")
    assert res.exit_code == 2 and "not a folder of images" in res.output
