"""A training run folder is untrusted input and is never overwritten by accident (issue 14): weights-only
checkpoints read only from inside the run, fallback past missing/truncated checkpoints, --resume/--force."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

from rtdmd_bench.training import checkpoint
from rtdmd_bench.training.rundir import TrainRunDirError, prepare, truncate_metrics


class _Evil:
    """Unpickling this creates a marker file: what a crafted checkpoint would do."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _payload(step: int) -> dict:
    return {"config_hash": "abc", "world": 1, "nets": {"g": {"w": torch.ones(2) * step}}, "optimizers": {},
            "schedulers": {}, "emas": {}, "extra": {}, "rng": [checkpoint.capture_rng()]}


def test_rng_state_round_trips_weights_only(tmp_path):
    import random

    import numpy as np

    checkpoint.save(tmp_path, 1, _payload(1))
    state = checkpoint.load(tmp_path / "checkpoints" / "checkpoint-1", expected_hash="abc")  # weights_only=True
    checkpoint.restore_rng(state["rng"][0])
    first = (torch.rand(2).tolist(), np.random.rand(2).tolist(), random.random())
    checkpoint.restore_rng(state["rng"][0])
    assert (torch.rand(2).tolist(), np.random.rand(2).tolist(), random.random()) == first


def test_crafted_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "run" / "checkpoints" / "checkpoint-3"
    ckpt.mkdir(parents=True)
    torch.save({"schema": checkpoint.SCHEMA, "step": 3, "config_hash": "abc", "x": _Evil(marker)}, ckpt / "state.pt")
    with pytest.raises(checkpoint.CheckpointError, match="refusing to unpickle"):
        checkpoint.load_latest(tmp_path / "run", expected_hash="other")  # refused before the hash check
    assert not marker.exists()


def test_latest_pointing_outside_the_run_is_refused(tmp_path):
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    checkpoint.save(run, 1, _payload(1))
    checkpoint.save(elsewhere, 9, _payload(9))
    (run / "checkpoints" / "latest").write_text("../../elsewhere/checkpoints/checkpoint-9\n")
    with pytest.raises(checkpoint.CheckpointError, match="not a checkpoint folder inside"):
        checkpoint.load_latest(run)
    (run / "checkpoints" / "checkpoint-7").symlink_to(elsewhere / "checkpoints" / "checkpoint-9")
    (run / "checkpoints" / "latest").write_text("checkpoint-1\n")
    assert [p.name for p in checkpoint.candidates(run)] == ["checkpoint-1"]  # the symlink out is ignored


def test_missing_latest_and_truncated_checkpoints_fall_back(tmp_path):
    for step in (1, 2, 3):
        checkpoint.save(tmp_path, step, _payload(step))
    (tmp_path / "checkpoints" / "latest").write_text("checkpoint-5\n")  # points at nothing
    data = (tmp_path / "checkpoints" / "checkpoint-3" / "state.pt").read_bytes()
    (tmp_path / "checkpoints" / "checkpoint-3" / "state.pt").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.warns(UserWarning) as record:
        path, state = checkpoint.load_latest(tmp_path)
    assert path.name == "checkpoint-2" and float(state["nets"]["g"]["w"][0]) == 2.0
    text = " ".join(str(w.message) for w in record)
    assert "checkpoint-5, which does not exist" in text and "skipping" in text and "checkpoint-3" in text


def test_stale_tmp_folders_are_cleaned(tmp_path):
    stale = tmp_path / "checkpoints" / ".checkpoint-4.123.tmp"
    stale.mkdir(parents=True)
    checkpoint.save(tmp_path, 1, _payload(1))
    assert not stale.exists()


def test_out_holding_a_run_needs_resume_or_force(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "lora").mkdir()
    with pytest.raises(TrainRunDirError, match="--resume to continue it, --force"):
        prepare(tmp_path, resume=False, force=False, is_main=True)
    prepare(tmp_path, resume=True, force=False, is_main=True)
    assert (tmp_path / "lora").exists()
    prepare(tmp_path, resume=False, force=True, is_main=True)
    assert not any((tmp_path / n).exists() for n in ("checkpoints", "metrics.jsonl", "lora"))
    prepare(tmp_path / "fresh", resume=False, force=False, is_main=True)  # an empty/new folder is fine


def test_resume_drops_replayed_metric_rows(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": s}) + "\n" for s in (1, 2, 3, 4)) + "{broken\n")
    assert truncate_metrics(path, 2) == 3
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
