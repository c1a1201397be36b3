"""Lining up image folders with suite prompts (no scorer involved): prompt-named files (T2I-CompBench), mapping
files by prompt or id, the harness layout's samples.jsonl check, duplicates and the mismatch report."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from rtdmd_bench.eval.image_layouts import ImageFolderError, match_images
from rtdmd_bench.suites.loaders import PromptRecord

PROMPTS = [PromptRecord(i, p) for i, p in enumerate(["a red ball", "two cats", "a blue car"])]


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


def test_prompt_named_files_and_mapping_rows(tmp_path):
    flat = tmp_path / "t2i"
    for name in ("a red ball_000000.png", "a red ball_000001.png", "a blue car_000000.png"):
        _png(flat / name)
    layout, found = match_images(flat, "s", PROMPTS)
    assert layout == "flat" and [(f.prompt_id, f.sample_idx) for f in found] == [(0, 0), (0, 1), (2, 0)]

    (flat / "map.jsonl").write_text(json.dumps({"image": "a red ball_000000.png", "prompt_id": 1}) + "\n"
                                    + json.dumps({"path": "a blue car_000000.png", "prompt": "a blue car"}) + "\n")
    _, found = match_images(flat, "s", PROMPTS, mapping=flat / "map.jsonl")
    assert [(f.prompt_id, f.sample_idx, f.source) for f in found] == [(1, 0, "a red ball_000000.png"),
                                                                     (2, 0, "a blue car_000000.png")]


def test_harness_layout_checks_recorded_prompts_and_mismatches_are_listed(tmp_path):
    run = tmp_path / "run"
    for pid, k in ((0, 0), (1, 0), (7, 0)):
        _png(run / "images" / "s" / f"{pid:05d}_{k:02d}.png")
    (run / "samples.jsonl").write_text(json.dumps({"suite": "s", "prompt_id": 1, "sample_idx": 0,
                                                   "prompt": "three dogs"}) + "\n")
    with pytest.raises(ImageFolderError) as err:
        match_images(run, "s", PROMPTS)
    msg = str(err.value)
    assert "2 of 3 entries do not line up with its 3 prompts" in msg and "prompt id 7 is not in the suite" in msg
    assert "samples.jsonl says prompt 'three dogs'" in msg

    flat = tmp_path / "dup"
    _png(flat / "x.png")
    (flat / "m.csv").write_text("file,prompt,sample_idx\nx.png,two cats,0\nx.png,two cats,0\nmissing.png,two cats,1\n")
    with pytest.raises(ImageFolderError, match="image missing.png not found.*same prompt 1 and sample 0 as x.png"):
        match_images(flat, "s", PROMPTS, mapping=flat / "m.csv")
