"""OCR, HPSv3 and GenEval2 through the one evaluation path on tiny generators; the paper's nine-metric routing."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from rtdmd_bench.cli import app

runner = CliRunner()


def _register(tmp_path, name: str, fmt: str, data: str, extra: str):
    from rtdmd_bench.suites import SUITES
    from rtdmd_bench.suites.manifest import read_manifest

    d = tmp_path / "prompts" / name
    d.mkdir(parents=True)
    (d / "prompts.txt").write_text(data)
    n = len([x for x in data.splitlines() if x.strip()])
    (d / "suite.yaml").write_text(
        f"name: {name}\nversion: '1'\nsplit: test\nformat: {fmt}\nfile: prompts.txt\nlocation: repo\n"
        f"sha256: {hashlib.sha256(data.encode()).hexdigest()}\nn_prompts: {n}\n{extra}")
    SUITES.add(read_manifest(d / "suite.yaml"))
    return name


@pytest.fixture
def mini_ocr(tmp_path):
    from rtdmd_bench.suites import SUITES

    yield _register(tmp_path, "mini_ocr", "txt",
                    'a neon sign that says "OPEN"\na storefront with no lettering\na poster reading "Sale 50%"\n',
                    "default_rewards: [ocr]\n")
    SUITES.remove("mini_ocr")


G2_ROWS = [
    {"prompt": "two red cats", "atom_count": 3, "vqa_list": [["How many cats are in the image?", "two"],
                                                             ["Are the cats red?", "Yes"],
                                                             ["Are there any cats in the image?", "Yes"]],
     "skills": ["count", "attribute", "object"]},
    {"prompt": "a dog left of a bicycle", "atom_count": 10, "vqa_list": [["Are there any dogs in the image?", "Yes"],
                                                                        ["Is the dog left of the bicycle?", "Yes"]],
     "skills": ["object", "position"]},
    {"prompt": "a cat", "atom_count": 3, "vqa_list": [["Are there any cats in the image?", "Yes"]],
     "skills": ["object"]},
]


@pytest.fixture
def mini_geneval2(tmp_path):
    from rtdmd_bench.suites import SUITES

    yield _register(tmp_path, "mini_geneval2", "geneval2_jsonl", "".join(json.dumps(r) + "\n" for r in G2_ROWS),
                    "metadata_fields: [atom_count, vqa_list, skills]\ntag_field: atom_count\n"
                    "default_rewards: [geneval2]\n")
    SUITES.remove("mini_geneval2")


def test_ocr_suite_end_to_end_with_invalid_prompts_counted(tiny_weights, mini_ocr, tmp_path):
    out = tmp_path / "ocr"
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", mini_ocr, "--rewards", "ocr", "--weights",
                              "tiny", "--out", str(out), "--no-progress", "--set", "reward_options.ocr.text_score=0.5"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    entry = results["results"]["mini_ocr/ocr"]
    assert entry["n"] == 2 and entry["n_invalid"] == 1 and entry["units"] == "1 - normalised edit distance"
    assert entry["reward_version"] == "ocr-ppocr-1/ppocrv6-small" and 0.0 <= entry["mean"] <= 1.0
    info = results["rewards"]["ocr"]
    assert info["options"] == {"model": "ppocrv6-small", "text_score": 0.5}
    assert [f["name"] for f in info["files"]] == ["PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx"]
    assert all(len(f["sha256"]) == 64 for f in info["files"])
    recs = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    bad = next(r for r in recs if r["prompt_id"] == 1)
    assert bad["valid"]["ocr"] is False and bad["scores"]["ocr"] is None
    assert bad["extras"]["ocr"]["reason"] == "no quoted text in the prompt"
    assert recs[0]["extras"]["ocr"]["target"] == "OPEN"
    # another OCR model on the same run dir would mix two scorers' cached numbers: refused
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", mini_ocr, "--rewards", "ocr", "--weights",
                              "tiny", "--out", str(out), "--no-progress", "--set", "reward_options.ocr.text_score=0.3"])
    assert res.exit_code == 2 and "reward_options" in res.output


def test_geneval2_and_hpsv3_end_to_end_with_breakdowns(tiny_weights, mini_geneval2, tmp_path):
    out = tmp_path / "g2"
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", mini_geneval2, "--rewards",
                              "geneval2,hpsv3", "--weights", "tiny", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    g2 = results["results"]["mini_geneval2/geneval2"]
    assert g2["n"] == 3 and g2["n_invalid"] == 0 and list(g2["tags"]) == ["3", "10"]  # atom counts, numeric order
    assert set(g2["breakdowns"]["skill"]) == {"count", "attribute", "object", "position"}
    obj = g2["breakdowns"]["skill"]["object"]
    assert obj["n"] == 3 and obj["ci95"] is not None and obj["ci95"][0] <= obj["mean"] <= obj["ci95"][1]
    recs = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    objects = [s for r in recs for s in r["extras"]["geneval2"]["breakdown"]["skill"].get("object", [])]
    assert obj["mean"] == pytest.approx(sum(objects) / len(objects))  # atom level: pooled over atoms
    assert all(r["parts"]["geneval2"]["soft_tifa_gm"] == r["scores"]["geneval2"] for r in recs)
    hps = results["results"]["mini_geneval2/hpsv3"]
    assert hps["n"] == 3 and hps["units"] == "mu of the reward head" and results["rewards"]["hpsv3"]["differentiable"]


def test_geneval2_on_a_suite_without_vqa_lists_gives_invalid_samples_with_the_reason(tiny_weights, tmp_path):
    out = tmp_path / "smoke_g2"
    res = runner.invoke(app, ["eval", "--model", "tiny-flux2", "--suite", "smoke", "--rewards", "geneval2",
                              "--limit", "2", "--weights", "tiny", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    entry = json.loads((out / "results.json").read_text())["results"]["smoke/geneval2"]
    assert entry["n"] == 0 and entry["n_invalid"] == 2 and entry["mean"] is None
    rec = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert "no GenEval2 vqa_list" in rec["extras"]["geneval2"]["reason"]


def test_rtdmd_paper_routes_the_nine_metrics_like_the_reference():
    """ALGORITHM.md §7.2 reward_dataset_map: every metric on its own prompt set."""
    from rtdmd_bench.eval.plan import BENCHMARKS, check_rewards
    from rtdmd_bench.rewards import REWARDS
    from rtdmd_bench.suites import SUITES

    routing = dict(BENCHMARKS.spec("rtdmd-paper").routing)
    by_metric = {r: s for s, rs in routing.items() for r in rs}
    assert by_metric == {"clipscore": "drawbench", "aesthetic": "drawbench", "pickscore": "drawbench",
                         "hpsv2": "drawbench", "imagereward": "drawbench", "hpsv3": "hpdv3", "geneval": "geneval",
                         "geneval2": "geneval2", "ocr": "ocr"}
    assert all(r in REWARDS for r in by_metric) and all(s in SUITES for s in routing)
    check_rewards(list(routing.items()))  # every reward gets the inputs it needs from its suite
