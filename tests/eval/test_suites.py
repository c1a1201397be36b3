import json
from pathlib import Path

import pytest

from rtdmd_bench.suites import SUITES, import_suite, load_suite, suite_spec
from rtdmd_bench.suites.loaders import SuiteChecksumError, SuiteFormatError, parse_file


def test_smoke_suite_ships_and_verifies():
    spec = SUITES.spec("smoke")
    recs = load_suite("smoke")
    assert spec.id == "smoke@1" and len(recs) == spec.n_prompts == 12
    assert {r.tag for r in recs} >= {"object", "counting", "style", "position", "text", "scene"}
    assert [r.prompt_id for r in recs] == list(range(12))


def test_canonical_manifests_present():
    for name in ("geneval", "geneval2", "drawbench", "pickapic", "hpdv3", "ocr"):
        spec = suite_spec(name)
        assert len(spec.sha256) == 64 and spec.n_prompts > 0 and spec.fetch_url
    assert suite_spec("geneval").images_per_prompt == 4


def test_uninstalled_suite_tells_how_to_import():
    with pytest.raises(FileNotFoundError, match="rtdmd-bench prompts import drawbench FILE"):
        load_suite("drawbench")


def test_import_checks_sha_and_count(tmp_path):
    bad = tmp_path / "draw.txt"
    bad.write_text("a prompt\nanother\n")
    with pytest.raises(SuiteChecksumError, match="does not match suite drawbench@1"):
        import_suite("drawbench", bad)
    with pytest.raises(FileNotFoundError):
        import_suite("drawbench", tmp_path / "missing.txt")


def test_import_dedupes_the_reference_five_fold_file(tmp_path, monkeypatch):
    # A synthetic suite whose manifest sha is that of the de-duplicated file.
    import hashlib

    base = tmp_path / "prompts" / "mini"
    base.mkdir(parents=True)
    canonical = "b prompt\na prompt\n"
    sha = hashlib.sha256(canonical.encode()).hexdigest()
    (base / "suite.yaml").write_text(
        f"name: mini\nversion: '1'\nsplit: test\nformat: txt\nfile: mini.txt\nlocation: data\nsha256: {sha}\nn_prompts: 2\n"
        "fetch_dedupe: true\ndefault_rewards: [saturation]\n")
    from rtdmd_bench.suites.manifest import read_manifest

    SUITES.add(read_manifest(base / "suite.yaml"))
    try:
        src = tmp_path / "five.txt"
        src.write_text("b prompt\na prompt\nb prompt\na prompt\nb prompt")
        dest = import_suite("mini", src)
        assert dest.read_text() == canonical
        assert [r.prompt for r in load_suite("mini")] == ["b prompt", "a prompt"]
    finally:
        SUITES.remove("mini")


@pytest.mark.parametrize("fmt,content,line", [
    ("jsonl", '{"prompt": "ok"}\n{"prompt": "x"\n', 2),
    ("jsonl", '{"prompt": "ok"}\n[1, 2]\n', 2),
    ("jsonl", '{"prompt": ""}\n', 1),
    ("geneval_jsonl", '{"prompt": "a", "tag": "colors", "include": [{"class": "cat", "count": 1}]}\n'
                      '{"prompt": "b", "tag": "colour", "include": [{"class": "cat"}]}\n', 2),
    ("geneval_jsonl", '{"prompt": "a", "tag": "colors"}\n', 1),
    ("geneval2_jsonl", '{"prompt": "a", "atom_count": 3, "vqa_list": [["Q?", "Yes"]], "skills": ["object"]}\n'
                       '{"prompt": "b", "atom_count": 3, "vqa_list": [["Q?", "Yes"]], "skills": []}\n', 2),
    ("geneval2_jsonl", '{"prompt": "a", "atom_count": 3, "vqa_list": [], "skills": []}\n', 1),
    ("geneval2_jsonl", '{"prompt": "a", "atom_count": "3", "vqa_list": [["Q?", "Yes"]], "skills": ["object"]}\n', 1),
    ("geneval2_jsonl", '{"prompt": "a", "atom_count": 3, "vqa_list": [["Q?", "Yes"]], "skills": ["colour"]}\n', 1),
    ("geneval2_jsonl", '{"prompt": "a", "atom_count": 3, "skills": ["object"]}\n', 1),
    ("csv", "prompt,tag\nhello,a\nworld,b,extra\n", 3),
    ("csv", "text,tag\nhello,a\n", 1),
    ("tsv", "prompt\ttag\n\ta\n", 2),
])
def test_malformed_files_name_file_and_line(tmp_path, fmt, content, line):
    p = tmp_path / f"f.{fmt}"
    p.write_text(content)
    with pytest.raises(SuiteFormatError, match=rf"f\.{fmt}:{line}:"):
        parse_file(p, fmt)


def test_csv_and_tsv_prompt_column(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text('prompt,category\n"a cat, sitting",animals\na dog,animals\n')
    rows = parse_file(p, "csv")
    assert rows[0] == {"prompt": "a cat, sitting", "category": "animals"}
    t = tmp_path / "f.tsv"
    t.write_text("id\tprompt\n1\ta cat\n")
    assert parse_file(t, "tsv")[0]["prompt"] == "a cat"


def test_geneval_metadata_parsed(tmp_path):
    p = tmp_path / "g.jsonl"
    row = {"tag": "counting", "include": [{"class": "dog", "count": 2}], "exclude": [{"class": "dog", "count": 3}],
           "prompt": "a photo of two dogs"}
    p.write_text(json.dumps(row) + "\n")
    rows = parse_file(p, "geneval_jsonl")
    assert rows[0]["include"][0]["count"] == 2 and rows[0]["exclude"][0]["count"] == 3


def test_geneval2_vqa_lists_are_per_prompt_metadata(tmp_path, monkeypatch):
    """The suite loads the GenEval2 file (same schema, synthetic rows here) with vqa_list/skills as each prompt's
    metadata and the atom count as its tag; two prompts with the same text keep their own lists."""
    import hashlib

    rows = [{"prompt": "two red cats", "atom_count": 3, "vqa_list": [["How many cats are in the image?", "two"],
                                                                     ["Are the cats red?", "Yes"]],
             "skills": ["count", "attribute"]},
            {"prompt": "two red cats", "atom_count": 10, "vqa_list": [["Are there any cats in the image?", "Yes"]],
             "skills": ["object"]}]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    base = tmp_path / "prompts" / "g2"
    base.mkdir(parents=True)
    manifest = (Path(suite_spec("geneval2").manifest_dir) / "suite.yaml").read_text()
    manifest = manifest.replace("name: geneval2", "name: g2").replace(suite_spec("geneval2").sha256,
                                                                      hashlib.sha256(data).hexdigest())
    (base / "suite.yaml").write_text(manifest.replace("n_prompts: 800", "n_prompts: 2"))
    monkeypatch.setenv("RTDMD_BENCH_DATA", str(tmp_path / "data"))
    from rtdmd_bench.suites.manifest import read_manifest

    SUITES.add(read_manifest(base / "suite.yaml"))
    try:
        (tmp_path / "g2.jsonl").write_bytes(data)
        import_suite("g2", tmp_path / "g2.jsonl")
        recs = load_suite("g2")
        assert [r.tag for r in recs] == ["3", "10"]
        assert recs[0].metadata["vqa_list"][1] == ["Are the cats red?", "Yes"]
        assert recs[1].metadata["skills"] == ["object"] and recs[1].metadata["atom_count"] == 10
    finally:
        SUITES.remove("g2")


def test_changed_repo_suite_fails_checksum(tmp_path):
    import shutil

    from rtdmd_bench.suites.loaders import load_prompts
    from rtdmd_bench.suites.manifest import read_manifest

    src = suite_spec("smoke")
    d = tmp_path / "smoke"
    shutil.copytree(src.manifest_dir, d)
    with open(d / "prompts.jsonl", "a") as fh:
        fh.write('{"prompt": "sneaky extra prompt"}\n')
    with pytest.raises(SuiteChecksumError, match="sha256"):
        load_prompts(read_manifest(d / "suite.yaml"))


@pytest.mark.parametrize("name", SUITES.names())
def test_every_manifest_is_consistent(name):
    """The contract of a suite manifest (docs/extending.md): a split, known default rewards that get the inputs
    they need, a checksum and a count (or, for a set never available here, the git blob id of its source file),
    and a repo-shipped file that verifies."""
    from rtdmd_bench.rewards import reward_spec

    spec = SUITES.spec(name)
    assert spec.split in ("train", "test"), name
    assert (spec.n_prompts > 0 and len(spec.sha256) == 64) or (
        spec.location == "data" and len(spec.git_blob_sha1) == 40 and not spec.sha256 and spec.source), name
    for reward in spec.default_rewards:
        rs = reward_spec(reward)
        assert not rs.needs_metadata or spec.metadata_fields, (name, reward)
    if spec.location == "repo":
        assert len(load_suite(name)) == spec.n_prompts
