"""Bad input: corrupt or truncated files name the file and line, other schema versions say which,
empty runs are refused, missing images are reported without crashing."""

from __future__ import annotations

import json

import pytest

from rtdmd_bench.report.runs import RunError, load_run


def test_truncated_last_sample_line_is_named(make_run):
    run = make_run("a")
    path = run / "samples.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # cut the last line mid-object, no final newline
    n_lines = text.count("\n")
    with pytest.raises(RunError, match=f"line {n_lines} is truncated"):
        load_run(run)


def test_corrupt_middle_line_and_invalid_sample_are_named(make_run):
    run = make_run("a")
    path = run / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + ["{not json\n"] + lines[3:]))
    with pytest.raises(RunError, match="samples.jsonl: line 3: invalid JSON"):
        load_run(run)
    sample = json.loads(lines[4])
    del sample["prompt_id"]
    path.write_text("".join(lines[:4] + [json.dumps(sample) + "\n"] + lines[5:]))
    with pytest.raises(RunError, match="line 5: .*prompt_id"):
        load_run(run)
    path.write_text("".join(lines[:4] + [lines[0]] + lines[5:]))
    with pytest.raises(RunError, match="line 5 repeats .* of line 1"):
        load_run(run)


def test_truncated_and_incompatible_results_json(make_run):
    run = make_run("a")
    path = run / "results.json"
    text = path.read_text()
    path.write_text(text[:200])
    with pytest.raises(RunError, match="results.json: invalid JSON at line .*truncated"):
        load_run(run)
    obj = json.loads(text)
    obj["schema_version"] = 2
    obj["package_version"] = "9.9.9"
    path.write_text(json.dumps(obj))
    with pytest.raises(RunError, match=r"schema_version 2 \(written by rtdmd-bench 9.9.9\).* reads schema_version 1"):
        load_run(run)
    obj["schema_version"] = 1
    del obj["run"]
    path.write_text(json.dumps(obj))
    with pytest.raises(RunError, match="missing key 'run'"):
        load_run(run)


def test_empty_runs_are_refused(make_run):
    run = make_run("a")
    (run / "samples.jsonl").write_text("")
    with pytest.raises(RunError, match="empty run - no samples"):
        load_run(run)
    assert load_run(run, samples=False).entries  # the leaderboard only needs results.json
    obj = json.loads((run / "results.json").read_text())
    obj["results"] = {}
    (run / "results.json").write_text(json.dumps(obj))
    with pytest.raises(RunError, match="empty run - 'results' has no suite/reward entries"):
        load_run(run, samples=False)
    (run / "results.json").write_text("")
    with pytest.raises(RunError, match="empty file"):
        load_run(run)
    with pytest.raises(RunError, match="no such run directory"):
        load_run(run.parent / "nothing-here")
    (run / "results.json").unlink()
    with pytest.raises(RunError, match="results.json: file not found"):
        load_run(run)


def test_missing_images_are_listed_not_fatal(make_run):
    run = make_run("a")
    (run / "images/smoke/2_1.png").unlink()
    loaded = load_run(run)
    assert loaded.missing_images == ["images/smoke/2_1.png"]
    assert load_run(make_run("b", write_images=False)).missing_images


def test_sample_from_unknown_suite_is_named(make_run):
    run = make_run("a")
    path = run / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    sample = json.loads(lines[1])
    sample["suite_version"] = "7"
    path.write_text(lines[0] + json.dumps(sample) + "\n" + "".join(lines[2:]))
    with pytest.raises(RunError, match="line 2: suite smoke@7 is not listed"):
        load_run(run)
