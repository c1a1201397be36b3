"""Synthetic run directories for the report tests: valid results.json / samples.jsonl / config.yaml and
tiny PNGs, checked against ``rtdmd_bench.eval.schema`` so the tests exercise the real input format."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rtdmd_bench.eval.schema import SCHEMA_VERSION, validate_results, validate_sample

REWARDS: dict[str, dict[str, Any]] = {
    "clipscore": {"version": "clip-l14-1", "units": "cosine", "higher_is_better": True, "differentiable": True},
    "pickscore": {"version": "v1", "units": "exp(logit_scale)*cosine", "higher_is_better": True, "differentiable": True},
    "geneval": {"version": "rules-1", "units": "accuracy", "higher_is_better": True, "differentiable": False},
    "blur": {"version": "1", "units": "px", "higher_is_better": False, "differentiable": False},
}
TAGS = ("colors", "counting", "position")
ScoreFn = Callable[[str, int, int, str], "float | None"]


def base_score(suite: str, prompt_id: int, sample_idx: int, reward: str) -> float | None:
    """Deterministic per-image scores in each reward's usual range."""
    h = int(hashlib.sha256(f"{suite}/{prompt_id}/{sample_idx}/{reward}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if reward == "geneval":
        return float(h > 0.4)
    return {"clipscore": 0.28 + 0.04 * h, "pickscore": 21.5 + 2.0 * h, "blur": 1.0 + h}.get(reward, h)


def _bootstrap_ci(per_prompt: list[float], seed: int = 0) -> list[float]:
    arr = np.asarray(per_prompt)
    idx = np.random.default_rng(seed).integers(0, arr.size, size=(500, arr.size))
    lo, hi = np.quantile(arr[idx].mean(axis=1), [0.025, 0.975])
    return [float(lo), float(hi)]


def _entry(suite: str, reward: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    spec = REWARDS[reward]
    by_prompt: dict[int, list[float]] = {}
    by_tag: dict[str, dict[int, list[float]]] = {}
    for s in samples:
        if s["valid"].get(reward):
            by_prompt.setdefault(s["prompt_id"], []).append(s["scores"][reward])
            by_tag.setdefault(s["tag"], {}).setdefault(s["prompt_id"], []).append(s["scores"][reward])
    values = [v for vs in by_prompt.values() for v in vs]
    prompt_means = [float(np.mean(v)) for v in by_prompt.values()]
    tags = {}
    for tag, prompts in sorted(by_tag.items()):
        tag_vals = [v for vs in prompts.values() for v in vs]
        tags[tag] = {"mean": float(np.mean(tag_vals)), "ci95": _bootstrap_ci([float(np.mean(v)) for v in prompts.values()]),
                     "n": len(tag_vals)}
    binary = all(v in (0.0, 1.0) for v in values)
    return {
        "suite": suite, "suite_version": "1", "reward": reward, "reward_version": spec["version"],
        "units": spec["units"], "higher_is_better": spec["higher_is_better"],
        "mean": float(np.mean(values)) if values else None,
        "ci95": _bootstrap_ci(prompt_means) if values else None,
        "std": float(np.std(values)) if values else None,
        "n": len(values), "n_prompts": len(by_prompt),
        "n_invalid": sum(1 for s in samples if not s["valid"].get(reward)),
        "tags": tags,
        "macro_over_tags": float(np.mean([t["mean"] for t in tags.values()])) if tags else None,
        "prompt_level": float(np.mean([max(v) for v in by_prompt.values()])) if binary and values else None,
        "headline": "mean",
        "headline_ci95": _bootstrap_ci(prompt_means) if values else None,
    }


def write_png(path: Path, color: tuple[int, int, int], size: int = 16) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_run(root: Path, name: str, *, model: str = "toy-model", tiny: bool = False,
              rewards: tuple[str, ...] = ("clipscore", "pickscore"), suite: str = "smoke", n_prompts: int = 6,
              images_per_prompt: int = 2, seed: int = 0, height: int = 64, width: int = 64,
              score: ScoreFn = base_score, training_rewards: list[str] | None = None,
              write_images: bool = True, nfe: int = 4, guidance: float = 1.0, images_per_s: float = 3.5,
              suite_sha: str = "ab" * 32) -> Path:
    """Write a complete, schema-valid run directory and return it."""
    run = root / name
    samples = []
    for pid in range(n_prompts):
        for k in range(images_per_prompt):
            scores = {r: score(suite, pid, k, r) for r in rewards}
            rel = f"images/{suite}/{pid}_{k}.png"
            sha = write_png(run / rel, ((pid * 40) % 256, (k * 90) % 256, 128)) if write_images else "0" * 64
            samples.append({
                "suite": suite, "suite_version": "1", "prompt_id": pid, "sample_idx": k,
                "prompt": f"prompt number {pid} with a | pipe", "seed": 1000 * pid + k + seed,
                "tag": TAGS[pid % len(TAGS)], "image": rel, "image_sha256": sha,
                "scores": scores, "valid": {r: v is not None for r, v in scores.items()},
                "parts": {}, "extras": {}, "gen_time_s": 0.25,
            })
    model_info = {"name": model, "family": "toy", "nfe": nfe, "steps": nfe, "guidance": guidance,
                  "height": height, "width": width, "tiny": tiny}
    if training_rewards is not None:
        model_info["training_rewards"] = training_rewards
    results = {
        "schema_version": SCHEMA_VERSION, "package_version": "0.1.0", "git_hash": None,
        "created": "2026-01-01T00:00:00Z", "tiny_weights": tiny, "config": {"seed": seed},
        "model": model_info,
        "suites": {f"{suite}@1": {"name": suite, "version": "1", "sha256": suite_sha, "n_prompts": n_prompts,
                                  "n_prompts_used": n_prompts, "images_per_prompt": images_per_prompt,
                                  "limit": None, "prompt_ids": "all", "source": "test"}},
        "rewards": {r: REWARDS[r] for r in rewards},
        "results": {f"{suite}/{r}": _entry(suite, r, samples) for r in rewards},
        "run": {"world_size": 1, "hardware": {"platform": "test"}, "wall_time_s": 1.0, "images_per_s": images_per_s,
                "seed": seed, "images_total": len(samples), "bootstrap_resamples": 500},
    }
    assert validate_results(results) == [], validate_results(results)
    for s in samples:
        assert validate_sample(s) == []
    run.mkdir(parents=True, exist_ok=True)
    (run / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (run / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (run / "config.yaml").write_text(f"model: {model}\nsuite: {suite}\nseed: {seed}\n")
    return run


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """``make_run(name, **options)`` -> path of a synthetic run directory under tmp_path."""
    return lambda name, **kwargs: build_run(tmp_path, name, **kwargs)


def shifted(delta: dict[str, float], prompts: set[int] | None = None) -> ScoreFn:
    """Score function = base scores plus ``delta[reward]`` (only on ``prompts`` when given)."""
    def score(suite: str, pid: int, k: int, reward: str) -> float | None:
        value = base_score(suite, pid, k, reward)
        if value is None or (prompts is not None and pid not in prompts):
            return value
        return value + delta.get(reward, 0.0)
    return score


@pytest.fixture
def shift() -> Callable[..., ScoreFn]:
    """The ``shifted`` score-function factory, as a fixture (test modules do not import conftest)."""
    return shifted
