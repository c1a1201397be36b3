"""Leaderboard markdown: golden files, published anchors, refusal to mix units / versions / tiny weights.

Golden files are rewritten only with RTDMD_UPDATE_GOLDEN=1 (say why in the commit)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rtdmd_bench.published import DEFAULT_PATH, PublishedError, load_published
from rtdmd_bench.report.leaderboard import LeaderboardError, build_leaderboard

HERE = Path(__file__).parent
TEST_PUBLISHED = HERE / "data" / "published_test.yaml"


def assert_golden(name: str, text: str) -> None:
    path = HERE / "golden" / name
    if os.environ.get("RTDMD_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing; create it with RTDMD_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; if intended, RTDMD_UPDATE_GOLDEN=1"


def test_golden_measured_published_and_tiny(make_run, shift):
    runs = [
        make_run("run-toy", model="toy-model"),
        make_run("run-better", model="better-model", score=shift({"clipscore": 0.01, "pickscore": 0.5}),
                 nfe=8, guidance=3.5, images_per_s=1.25),
        make_run("run-tiny", model="tiny-flux2", tiny=True, rewards=("clipscore", "blur")),
    ]
    text = build_leaderboard(runs, TEST_PUBLISHED)
    assert_golden("leaderboard_mixed.md", text)
    assert build_leaderboard(list(reversed(runs)), TEST_PUBLISHED) == text  # input order does not matter
    real, tiny = text.split("## Real weights")[1].split("## Tiny random weights")
    assert "run-tiny" not in real and "Toy model (paper)" not in tiny and "run-tiny" in tiny
    assert "⚠ outside CI" in real  # pickscore published 30.0 vs measured ~22.5


def test_golden_published_only_with_the_real_anchor_file():
    text = build_leaderboard([], DEFAULT_PATH)
    assert_golden("leaderboard_published_only.md", text)
    for needle in ("FLUX.2 4B w/ RTDMD", "SD3-M teacher (w/ CFG)", "Flow-GRPO (PickScore)", "Hyper-SDXL",
                   "### coco5k", "### geneval2"):
        assert needle in text


def test_two_units_in_one_column_is_an_error(make_run):
    a = make_run("a")
    b = make_run("b")
    results = json.loads((b / "results.json").read_text())
    results["results"]["smoke/clipscore"]["units"] = "100*cosine"
    (b / "results.json").write_text(json.dumps(results))
    with pytest.raises(LeaderboardError, match="different units"):
        build_leaderboard([a, b], None)


def test_two_suite_versions_never_share_a_column(make_run):
    a = make_run("a")
    b = make_run("b", suite_sha="cd" * 32)  # same smoke@1, different prompt file
    with pytest.raises(LeaderboardError, match="same version must mean the same prompts"):
        build_leaderboard([a, b], None)
    c = make_run("c")
    results = json.loads((c / "results.json").read_text())
    results["suites"]["smoke@2"] = results["suites"].pop("smoke@1")
    for entry in results["results"].values():
        entry["suite_version"] = "2"
    (c / "results.json").write_text(json.dumps(results))
    text = build_leaderboard([a, c], None)
    header = next(line for line in text.splitlines() if line.startswith("| Model"))
    assert "smoke@1 / clipscore@clip-l14-1" in header and "smoke@2 / clipscore@clip-l14-1" in header


def test_published_units_must_match_the_measured_column(make_run, tmp_path):
    bad = tmp_path / "published.yaml"
    bad.write_text(TEST_PUBLISHED.read_text().replace("units: cosine, scorer: \"CLIP L/14\"",
                                                      "units: 100*cosine, scorer: \"CLIP L/14\""))
    with pytest.raises(LeaderboardError, match="units '100\\*cosine'"):
        build_leaderboard([make_run("a")], bad)


def test_duplicate_run_names_are_refused(make_run, tmp_path):
    import shutil

    a = make_run("same")
    copy = shutil.copytree(a, tmp_path / "elsewhere" / "same")
    with pytest.raises(LeaderboardError, match="both named 'same'"):
        build_leaderboard([a, copy], None)


def test_real_published_file_loads_every_table_row():
    published = load_published(DEFAULT_PATH)
    by_source = {}
    for num in published.numbers:
        by_source.setdefault(num.source, set()).add(num.model)
    assert len(by_source["rtdmd-t1"]) == 4 and len(by_source["rtdmd-t2"]) == 8
    assert len(by_source["flow-grpo"]) == 4 and len(by_source["senseflow"]) == 10
    assert len(by_source["sana-sprint"]) == 6  # the GenEval anchors the model catalogue used to carry
    assert len(published.numbers) == 4 * 5 + 8 * 9 + 26 + 3 + 10 * 4 + 6
    rtdmd = {(n.metric, n.prompt_set): n for n in published.numbers if n.model == "FLUX.2 4B w/ RTDMD"}
    assert rtdmd[("hpsv2", "drawbench")].value == 0.3516 and rtdmd[("hpsv2", "drawbench")].units == "cosine"
    assert rtdmd[("geneval", "geneval")].value == 0.9046 and rtdmd[("hpsv3", "hpdv3")].value == 15.5772


@pytest.mark.parametrize("edit, message", [
    (("cfg: \"off\"", "cfg: \"maybe\""), "cfg"),
    (("nfe: 100,", "nfe: 100, typo_key: 1,"), "unknown key"),
    (("steps: 50, ", ""), "missing key 'steps'"),
    (("hpsv2: 0.281", "hpsv3: 0.281"), "not declared"),
    (("clipscore: 0.3, pickscore: 30.0", "clipscore: 0.3, pickscore: .nan"), "finite"),
    (("nfe: 4, steps: 4", "nfe: true, steps: 4"), "nfe"),
    (("source: paper-a\n", "source: paper-b\n"), "not in sources"),
])
def test_published_file_is_validated_strictly(tmp_path, edit, message):
    old, new = edit
    text = TEST_PUBLISHED.read_text()
    assert old in text
    path = tmp_path / "p.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(PublishedError, match=message):
        load_published(path)


def test_published_units_equal_the_registered_scorer_units():
    from rtdmd_bench.rewards import REWARDS, reward_spec

    checked = 0
    for num in load_published(DEFAULT_PATH).numbers:
        if num.metric in REWARDS:
            assert num.units == reward_spec(num.metric).units, (num.source, num.model, num.metric)
            checked += 1
    assert checked > 100


def _paper_metrics_run(root: Path) -> Path:
    """A schema-valid results.json of flux2-rtdmd with the HPSv3 / GenEval2 / OCR entries an eval writes."""
    from rtdmd_bench.eval.schema import SCHEMA_VERSION, validate_results
    from rtdmd_bench.rewards import reward_identity, reward_spec

    measured = {("hpdv3", "hpsv3"): (15.41, [15.30, 15.52]), ("geneval2", "geneval2"): (0.2801, [0.262, 0.298]),
                ("ocr", "ocr"): (0.7210, [0.700, 0.742])}
    results, suites, rewards = {}, {}, {}
    for (suite, reward), (mean, ci) in measured.items():
        spec, info = reward_spec(reward), reward_identity(reward, root, {}) if reward == "ocr" else None
        version = info["version"] if info else spec.version
        results[f"{suite}/{reward}"] = {
            "suite": suite, "suite_version": "1", "reward": reward, "reward_version": version, "units": spec.units,
            "higher_is_better": True, "mean": mean, "ci95": ci, "std": 0.1, "n": 64, "n_prompts": 64,
            "n_invalid": 0, "tags": {}, "macro_over_tags": None, "prompt_level": None, "headline": "mean",
            "headline_ci95": ci, "breakdowns": {}}
        suites[f"{suite}@1"] = {"name": suite, "version": "1", "sha256": suite * 4, "n_prompts": 800,
                                "n_prompts_used": 64, "images_per_prompt": 1, "limit": 64, "prompt_ids": "first 64",
                                "source": "test"}
        rewards[reward] = {"version": version, "units": spec.units, "higher_is_better": True,
                           "differentiable": spec.differentiable}
    doc = {"schema_version": SCHEMA_VERSION, "package_version": "0.1.0", "git_hash": None,
           "created": "2026-01-01T00:00:00Z", "tiny_weights": False, "config": {}, "suites": suites,
           "model": {"name": "flux2-rtdmd", "nfe": 4, "guidance": 1.0}, "rewards": rewards, "results": results,
           "run": {"world_size": 1, "hardware": {}, "wall_time_s": 1.0, "images_per_s": 0.5, "seed": 0}}
    assert validate_results(doc) == []
    run = root / "run-flux2-rtdmd"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(doc))
    return run


def test_hpsv3_geneval2_ocr_columns_meet_their_published_anchors(tmp_path):
    text = build_leaderboard([_paper_metrics_run(tmp_path)], DEFAULT_PATH)
    sections = {s.split("\n", 1)[0]: s for s in text.split("\n### ")[1:]}
    for suite, column, published, measured in [
            ("hpdv3", "hpdv3@1 / hpsv3@hpsv3-qwen2vl7b-1 ↑ (mu of the reward head)", "15.5772", "15.41"),
            ("geneval2", "geneval2@1 / geneval2@soft-tifa-gm-qwen3vl8b-1 ↑ (geometric mean of VQA probs)",
             "0.2755", "0.280"),
            ("ocr", "ocr@1 / ocr@ocr-ppocr-1/ppocrv6-small ↑ (1 - normalised edit distance)", "0.6858", "0.721")]:
        body = sections[suite]
        assert column in body and "measured: run-flux2-rtdmd" in body
        anchor = next(line for line in body.splitlines() if "FLUX.2 4B w/ RTDMD [rtdmd-t2]" in line
                      and "run-flux2-rtdmd" in line)
        assert published in anchor and measured in anchor
    assert "⚠ outside CI" in next(line for line in sections["hpdv3"].splitlines() if "15.5772" in line
                                  and "run-flux2-rtdmd" in line)  # 15.5772 is above the measured CI
