"""A trained LoRA's ``training.json`` reaches ``describe()`` (``training_rewards`` for the reward-hacking check)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from rtdmd_bench.models import build
from rtdmd_bench.models.lora import LoraError
from rtdmd_bench.training.lora import TRAINING_JSON, export_lora, inject_lora, lora_targets, training_record


def _export(tiny_models, folder, training=None):
    """A tiny-sd35 generator LoRA (nonzero B) exported the way the trainers do."""
    base = build("tiny-sd35", tiny_models)
    targets = lora_targets("sd35", base.transformer)
    net = inject_lora(copy.deepcopy(base.transformer), targets, rank=4, alpha=8.0)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.01)
    state = {n: p for n, p in net.named_parameters() if p.requires_grad}
    return export_lora(folder / "generator_ema.pt", state, 4, 8.0, targets, training=training)


def test_training_rewards_in_describe(tiny_models, tmp_path):
    record = training_record(2, "stage2_rtdmd", {"pickscore": 1.0, "hpsv2": 1.0, "geneval": 0.0}, "tiny-sd35", 3,
                             bp_rewards={"clipscore": 1.0})
    path = _export(tiny_models, tmp_path / "lora", training=record)
    written = json.loads((path.parent / TRAINING_JSON).read_text())
    assert written == {"stage": 2, "trainer": "stage2_rtdmd", "base_model": "tiny-sd35", "steps": 3,
                       "rewards": {"pickscore": 1.0, "hpsv2": 1.0, "geneval": 0.0}, "bp_rewards": {"clipscore": 1.0}}
    d = build("tiny-sd35", tiny_models, lora=[str(path)]).describe()
    # zero-weight rewards were not optimised; BP rewards were
    assert d["training_rewards"] == ["pickscore", "hpsv2", "clipscore"]
    (entry,) = d["lora"]
    assert entry["path"] == str(path) and entry["training"]["stage"] == 2
    assert entry["training"]["path"] == str(path.parent / TRAINING_JSON) and len(entry["training"]["sha256"]) == 64
    json.dumps(d)  # results.json must be able to hold it


def test_stack_unions_training_rewards(tiny_models, tmp_path):
    a = _export(tiny_models, tmp_path / "s1", training_record(1, "stage1_acdmd", {}, "tiny-sd35", 5))
    b = _export(tiny_models, tmp_path / "s2", training_record(2, "stage2_rtdmd", {"pickscore": 1.0}, "tiny-sd35", 2))
    d = build("tiny-sd35", tiny_models, lora=[str(a), str(b)]).describe()
    assert d["training_rewards"] == ["pickscore"]
    assert [e["training"]["stage"] for e in d["lora"]] == [1, 2]


def test_no_training_json_adds_nothing(tiny_models, tmp_path):
    path = _export(tiny_models, tmp_path / "plain")
    d = build("tiny-sd35", tiny_models, lora=[str(path)]).describe()
    assert "training_rewards" not in d and set(d["lora"][0]) == {"path", "sha256"}
    assert "training_rewards" not in build("tiny-sd35", tiny_models).describe()


def test_malformed_training_json_is_an_error(tiny_models, tmp_path):
    path = _export(tiny_models, tmp_path / "bad")
    (path.parent / TRAINING_JSON).write_text('{"rewards": ["pickscore"]}')
    with pytest.raises(LoraError, match="rewards"):
        build("tiny-sd35", tiny_models, lora=[str(path)])
