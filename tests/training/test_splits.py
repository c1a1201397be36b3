"""Train/test prompt separation: training refuses a ``test`` suite unless --allow-test-prompts; a LoRA trained on
one carries its prompt hashes, and eval, compare and leaderboard flag results on those prompts."""

from __future__ import annotations

import hashlib
import json

import pytest
import typer
from typer.testing import CliRunner

from rtdmd_bench.suites import SUITES, import_suite, load_suite, prompt_hash, suite_spec
from rtdmd_bench.suites.loaders import SuiteChecksumError
from rtdmd_bench.suites.manifest import read_manifest

PROMPTS = ["a red cube on a wooden table", "two cats asleep on a sofa", "a city street at night", "a blue car"]


def _train(args):
    from rtdmd_bench.cli.train import train

    app = typer.Typer()
    app.command()(train)
    return CliRunner().invoke(app, args)


def _cli(args):
    from rtdmd_bench.cli import app

    return CliRunner().invoke(app, args)


@pytest.fixture
def held_suite(register_suite):
    """A 4-prompt benchmark (split: test) shipped beside its manifest."""
    return register_suite("held", "\n".join(PROMPTS) + "\n", "test")


def _no_model_loads(monkeypatch):
    import rtdmd_bench.models

    def _no_load(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(rtdmd_bench.models, "build", _no_load)


def test_training_on_test_prompts_is_refused_before_any_model_loads(held_suite, tmp_path, monkeypatch):
    _no_model_loads(monkeypatch)
    for stage in ("1", "2"):
        res = _train(["--stage", stage, "--model", "tiny-sd35", "--weights", "tiny", "--out", str(tmp_path),
                      "--set", f"data.prompts={held_suite}"])
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and "test split of suite held@1" in text and "--allow-test-prompts" in text, text
        assert "pickapic-train" in text  # the training sets to use instead
    # the test file itself, given as a path, is recognised by its sha256
    res = _train(["--stage", "1", "--model", "tiny-sd35", "--weights", "tiny", "--out", str(tmp_path),
                  "--set", f"data.prompts={suite_spec(held_suite).installed_path()}"])
    assert res.exit_code == 2 and "--allow-test-prompts" in res.output


def test_allowed_test_prompts_are_recorded_and_flagged_downstream(held_suite, tiny_weights, tmp_path):
    train_dir = tmp_path / "train"
    res = _train(["--stage", "1", "--model", "tiny-sd35", "--weights", "tiny", "--out", str(train_dir), "--steps", "1",
                  "--set", f"data.prompts={held_suite}", "--set", "batch_size=2", "--set", "train.console_every=0",
                  "--allow-test-prompts"])
    assert res.exit_code == 0, res.output
    record = json.loads((train_dir / "lora" / "training.json").read_text())
    assert record["prompts"] == {"source": "held", "suite": "held@1", "split": "test",
                                 "sha256": suite_spec(held_suite).sha256, "n_prompts": 4, "allow_test_prompts": True,
                                 "hashes_file": "training_prompts.txt"}
    hashes = (train_dir / "lora" / "training_prompts.txt").read_text().split()
    assert hashes == sorted(prompt_hash(p) for p in PROMPTS)
    assert json.loads((train_dir / "config.json").read_text())["config"]["data"]["allow_test_prompts"] is True

    runs = {}
    for name, lora in (("base", []), ("trained", ["--lora", str(train_dir / "lora" / "generator_ema.pt")])):
        runs[name] = tmp_path / name
        res = _cli(["eval", "--model", "tiny-sd35", *lora, "--suite", f"{held_suite},smoke", "--rewards", "saturation",
                    "--weights", "tiny", "--limit", "2", "--no-progress", "--out", str(runs[name])])
        assert res.exit_code == 0, res.output
        assert ("⚠ trained on these prompts: held@1 (2 of 2" in res.output) is (name == "trained"), res.output
    results = json.loads((runs["trained"] / "results.json").read_text())
    flag = results["suites"]["held@1"]["trained_on_prompts"]
    assert flag["n_overlap"] == 2 and flag["n_prompts"] == 2 and flag["allow_test_prompts"] is True
    assert results["results"]["held/saturation"]["trained_on_prompts"] is True
    assert "trained_on_prompts" not in results["results"]["smoke/saturation"]  # no overlap with smoke
    assert "trained_on_prompts" not in json.loads((runs["base"] / "results.json").read_text())["suites"]["held@1"]

    board = _cli(["leaderboard", str(runs["base"]), str(runs["trained"]), "--out", str(tmp_path / "board.md")])
    assert board.exit_code == 0, board.output
    text = (tmp_path / "board.md").read_text()
    held_rows = [line for line in text.split("### held")[1].split("###")[0].splitlines() if "measured:" in line]
    assert sum("⚠ trained on these prompts" in line for line in held_rows) == 1
    assert "trained on these prompts" not in text.split("### smoke")[1]
    cmp = _cli(["compare", str(runs["base"]), str(runs["trained"])])
    assert cmp.exit_code == 0, cmp.output
    assert "WARNING: trained on these prompts" in cmp.output and "trained: held (2 of 2 prompts)" in cmp.output


def test_training_set_without_sha_is_verified_by_git_blob_and_recorded(tmp_path):
    from rtdmd_bench.suites import git_blob_sha1

    data = b'{"tag": "single_object", "include": [{"class": "cat", "count": 1}], "prompt": "a photo of a cat"}\n'
    d = tmp_path / "prompts" / "gtrain"
    d.mkdir(parents=True)
    (d / "suite.yaml").write_text(
        f"name: gtrain\nversion: '1'\nsplit: train\nformat: geneval_jsonl\nfile: train.jsonl\nlocation: data\n"
        f"sha256: ''\nn_prompts: 0\nmetadata_fields: [tag, include]\ngit_blob_sha1: {git_blob_sha1(data)}\n"
        f"source: somewhere\n")
    SUITES.add(read_manifest(d / "suite.yaml"))
    try:
        wrong = tmp_path / "wrong.jsonl"
        wrong.write_bytes(data.replace(b"cat", b"dog"))
        with pytest.raises(SuiteChecksumError, match="git blob id"):
            import_suite("gtrain", wrong)
        good = tmp_path / "good.jsonl"
        good.write_bytes(data)
        import_suite("gtrain", good)
        spec = suite_spec("gtrain")
        prov = json.loads(spec.provenance_path().read_text())
        assert prov["sha256"] == hashlib.sha256(data).hexdigest() and prov["n_prompts"] == 1 and prov["git_blob_verified"]
        assert spec.expected() == (prov["sha256"], 1) and [r.prompt for r in load_suite("gtrain")] == ["a photo of a cat"]
        spec.data_path().write_bytes(data + data)  # changed after the first import: refused on load
        with pytest.raises(SuiteChecksumError, match="its first import recorded"):
            load_suite("gtrain")
    finally:
        SUITES.remove("gtrain")


def test_reference_training_sets_have_manifests():
    pick = suite_spec("pickapic-train")
    assert pick.split == "train" and pick.n_prompts == 25432 and pick.sha256.startswith("2f425adc")
    assert pick.sha256.endswith("837f") and pick.git_blob_sha1
    for name in ("geneval-train", "hpdv3-train", "ocr-train"):
        spec = suite_spec(name)
        assert spec.split == "train" and len(spec.git_blob_sha1) == 40 and "Harahan/RTDMD" in spec.source
        assert spec.fetch_url and not spec.sha256
    assert suite_spec("geneval-train").metadata_fields[:2] == ("tag", "include")
    assert {s.name for s in SUITES if s.split == "test"} >= {"geneval", "drawbench", "pickapic", "hpdv3", "ocr"}
