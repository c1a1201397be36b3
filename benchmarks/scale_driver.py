"""Synthetic GenEval-like runs at production sample counts, and one post-generation step per process.

``python scale_driver.py make ROOT N_PROMPTS`` writes, under ``ROOT``: a ``scale`` suite (``N_PROMPTS`` prompts,
6 tags, 4 images each), run ``A`` exactly as ``rtdmd-bench eval`` leaves a finished run (config.yaml, one
8x8 PNG per image with its sha256/size/mtime in samples.jsonl, model.json), run ``B`` (same images, other
scores) and 20 leaderboard runs; it then finishes A and B with the real ``eval`` command (a resume that
generates nothing), which writes their results.json.

``python scale_driver.py STEP ROOT`` runs one step in a fresh process and prints one JSON line: wall seconds of
the step, its CPU seconds (user + system: steadier than wall time on a shared machine), peak RSS of the process
(MB) and RSS before the step (imports done, inputs prepared). Steps: ``merge``
(every record in two rank journals -> samples.jsonl), ``aggregate`` (results entries of both rewards, 1000
bootstrap resamples), ``leaderboard`` (20 runs), ``compare`` (A vs B), ``check`` (B against A), ``report`` (HTML of
A, default image limit), ``resume`` (eval of the finished A: plan, stat check, merge, aggregation) and
``resume-verify`` (the same with ``--verify-images``: every PNG re-hashed).

Rewards are two plugins of this module: ``scale_driver:ZeroOne`` (0/1, GenEval's macro-over-tags headline, so
compare runs McNemar) and ``scale_driver:Continuous``.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.spec import RewardSpec

TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
K = 4
MODEL = "rtdmd_bench.bench.standin:StandInGenerator"
REWARDS = ("scale_driver:ZeroOne", "scale_driver:Continuous")


class ZeroOne(Reward):
    spec = RewardSpec(name="zero_one", target="scale_driver:ZeroOne", description="synthetic 0/1", version="s1",
                      units="correct (0/1)", value_range=(0.0, 1.0), needs_prompt=False, headline="macro_over_tags")

    def score(self, images, prompts, metadata):
        scores = (images.mean(dim=(1, 2, 3)) > 0.5).float()
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool))


class Continuous(Reward):
    spec = RewardSpec(name="continuous", target="scale_driver:Continuous", description="synthetic", version="s1",
                      units="cosine", value_range=(0.0, 1.0), needs_prompt=False)

    def score(self, images, prompts, metadata):
        scores = images.mean(dim=(1, 2, 3))
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool))


def _h(*parts: object) -> float:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _register_suite(root: Path) -> None:
    from rtdmd_bench.suites import SUITES
    from rtdmd_bench.suites.manifest import read_manifest

    if "scale" not in SUITES:
        SUITES.add(read_manifest(root / "prompts" / "scale" / "suite.yaml"))


def _eval_args(out: Path, *extra: str) -> list[str]:
    return ["eval", "--model", MODEL, "--suite", "scale", "--rewards", ",".join(REWARDS), "--out", str(out),
            "--batch-size", "64", "--set", "overrides.height=8", "--set", "overrides.width=8", "--no-progress",
            *extra]


def _cli(args: list[str]) -> None:
    from rtdmd_bench.cli import app

    try:
        app(args, standalone_mode=False)
    except SystemExit as exc:  # typer.Exit inside standalone_mode=False surfaces as an exit code
        if exc.code not in (0, None):
            raise


def make(root: Path, n_prompts: int) -> None:
    from rtdmd_bench import config
    from rtdmd_bench.eval.config import EvalConfig, ModelOverrides
    from rtdmd_bench.imaging import png_bytes
    from rtdmd_bench.seeds import item_seed

    suite_dir = root / "prompts" / "scale"
    suite_dir.mkdir(parents=True)
    rows = [{"prompt": f"a photo of object {i} number {i % 97}", "tag": TAGS[i % len(TAGS)]} for i in range(n_prompts)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    (suite_dir / "prompts.jsonl").write_bytes(data)
    (suite_dir / "suite.yaml").write_text(
        f"name: scale\nversion: '1'\nformat: jsonl\nfile: prompts.jsonl\nlocation: repo\n"
        f"sha256: {hashlib.sha256(data).hexdigest()}\nn_prompts: {n_prompts}\nimages_per_prompt: {K}\n"
        "metadata_fields: [tag]\ntag_field: tag\ndefault_rewards: []\n")
    cfg = EvalConfig(model=MODEL, suites=("scale",), rewards=REWARDS, batch_size=64,
                     overrides=ModelOverrides(height=8, width=8))
    blobs = [png_bytes(np.full((8, 8, 3), c, dtype=np.uint8)) for c in range(256)]
    for name in ("A", "B"):
        run = root / name
        (run / "images" / "scale").mkdir(parents=True)
        config.save(EvalConfig(**{**cfg.__dict__, "out": str(run)}), run / "config.yaml")
        lines = []
        for pid, row in enumerate(rows):
            for k in range(K):
                rel = f"images/scale/{pid:05d}_{k:02d}.png"
                blob = blobs[(pid * K + k) % 256]
                path = root / "A" / rel
                if name == "A":
                    path.write_bytes(blob)
                st = path.stat()
                shift = 0.1 if name == "B" and pid % 3 == 0 else 0.0
                score = _h(name if shift else "A", pid, k)
                lines.append(json.dumps({
                    "suite": "scale", "suite_version": "1", "prompt_id": pid, "sample_idx": k, "prompt": row["prompt"],
                    "seed": item_seed("scale@1", pid, k, 0), "tag": row["tag"], "image": rel,
                    "image_sha256": hashlib.sha256(blob).hexdigest(), "image_size": st.st_size,
                    "image_mtime_ns": st.st_mtime_ns,
                    "scores": {REWARDS[0]: float(score + shift > 0.45), REWARDS[1]: 0.3 + 0.1 * score + shift},
                    "valid": {r: True for r in REWARDS}, "parts": {r: {} for r in REWARDS},
                    "extras": {r: {} for r in REWARDS}, "gen_time_s": 0.3}, sort_keys=True))
        (run / "samples.jsonl").write_text("".join(x + "\n" for x in lines))
        if name == "B":  # the same files, hard-linked (a symlinked folder would point outside B: not followed)
            for rel in (root / "A" / "images" / "scale").iterdir():
                os.link(rel, run / "images" / "scale" / rel.name)
        model = {"name": "standin", "family": "standin", "nfe": 4, "steps": 4, "height": 8, "width": 8,
                 "sampler": "standin", "tiny": True}
        (run / "model.json").write_text(json.dumps(model))
        _register_suite(root)
        _cli(_eval_args(run))  # the real eval path finishes the run: results.json
    board = root / "board"
    for i in range(20):
        d = board / f"run{i:02d}"
        d.mkdir(parents=True)
        results = json.loads((root / "A" / "results.json").read_text())
        results["model"]["name"] = f"model-{i:02d}"
        (d / "results.json").write_text(json.dumps(results))


def prepare(step: str, root: Path):
    """Inputs and imports of ``step`` (not timed); returns the timed callable."""
    _register_suite(root)
    if step == "merge":
        from rtdmd_bench.eval.journal import load_all, write_samples

        scratch = root / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        (scratch / "journal").mkdir(parents=True)
        lines = (root / "A" / "samples.jsonl").read_text().splitlines(keepends=True)
        half = len(lines) // 2
        (scratch / "journal" / "rank-0.jsonl").write_text("".join(lines[:half]))
        (scratch / "journal" / "rank-1.jsonl").write_text("".join(lines[half:]))
        return lambda: write_samples(scratch, load_all(scratch))
    if step == "aggregate":
        from rtdmd_bench.eval.aggregate import entry
        from rtdmd_bench.eval.journal import load_all
        from rtdmd_bench.rewards import reward_spec
        from rtdmd_bench.suites import suite_spec

        recs = list(load_all(root / "A").values())
        spec = suite_spec("scale")
        return lambda: [entry(recs, spec, r, reward_spec(r), 1000) for r in REWARDS]
    import rtdmd_bench.report.compare  # noqa: F401  (numpy and the report modules: imports are not the step)
    import rtdmd_bench.report.html_report  # noqa: F401

    commands = {
        "leaderboard": ["leaderboard", *sorted(str(p) for p in (root / "board").iterdir()), "--out",
                        str(root / "board.md"), "--no-published"],
        "compare": ["compare", str(root / "A"), str(root / "B")],
        "check": ["check", str(root / "B"), "--baseline", str(root / "A")],
        "report": ["report", str(root / "A"), "--out", str(root / "report.html")],
        "resume": _eval_args(root / "A"),
        "resume-verify": _eval_args(root / "A", "--verify-images"),
    }
    import rtdmd_bench.eval.runner  # noqa: F401

    return lambda: _cli(commands[step])


def main() -> None:
    step, root = sys.argv[1], Path(sys.argv[2])
    if step == "make":
        make(root, int(sys.argv[3]))
        return
    fn = prepare(step, root)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.devnull, "w") as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        t0 = time.perf_counter()
        try:
            fn()
        finally:
            seconds = time.perf_counter() - t0
            sys.stdout = stdout
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    print(json.dumps({"step": step, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": after.ru_maxrss / 1024,
                      "rss_before_mb": usage.ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
