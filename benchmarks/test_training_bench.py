"""Training benchmarks (pytest-benchmark): rollout with log-probs vs plain generation, stage-2 phase timings.

Run: ``pytest benchmarks/test_training_bench.py`` (tiny presets on CPU; on a GPU pass a real model through
``RTDMD_BENCH_BENCH_MODEL`` / ``RTDMD_BENCH_WEIGHTS``).
"""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

MODEL = os.environ.get("RTDMD_BENCH_BENCH_MODEL", "tiny-sd35")
WEIGHTS = os.environ.get("RTDMD_BENCH_WEIGHTS_FOR_BENCH", "tiny")
BATCH = 8


@pytest.fixture(scope="module")
def setup():
    from rtdmd_bench.training.backbone import SampleRNG
    from rtdmd_bench.training.image_backbone import build_image_backbone

    torch.set_num_threads(2)
    bb = build_image_backbone(MODEL, WEIGHTS, "cuda" if torch.cuda.is_available() else "cpu")
    net = bb.networks().generator
    prompts = [f"a photo of object {i}" for i in range(BATCH)]
    cond = bb.encode(prompts)
    rng = SampleRNG(0)
    x = rng.randn(0, "x", range(BATCH), bb.latent_shape, bb.device)
    noises = [rng.randn(0, f"z{k}", range(BATCH), bb.latent_shape, bb.device) for k in range(len(bb.sigmas))]
    return bb, net, cond, x, noises


def _plain(bb, net, cond, x, noises):
    from rtdmd_bench.sampling import cps_rollout

    sig = [float(s) for s in bb.sigmas]
    with torch.no_grad():
        return cps_rollout(x, lambda xk, s, k: bb.velocity(net, xk, torch.full((x.shape[0],), s), cond), sig, bb.eta,
                           lambda k: noises[k])


def _with_logprob(bb, net, cond, x, noises):
    from rtdmd_bench.training.terms import rollout_with_logprob

    return rollout_with_logprob(bb, net, cond, x, lambda k: noises[k]).final


def _min_time(fn, *args, rounds=7):
    fn(*args)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def test_plain_generation(benchmark, setup):
    benchmark(_plain, *setup)


def test_rollout_with_logprob(benchmark, setup):
    benchmark(_with_logprob, *setup)


def test_logprob_overhead_at_most_15_percent(setup):
    torch.testing.assert_close(_plain(*setup), _with_logprob(*setup))  # same samples
    ratio = _min_time(_with_logprob, *setup) / _min_time(_plain, *setup)
    print(f"rollout with log-probs / plain generation = {ratio:.3f}")
    assert ratio <= 1.15


def test_stage2_epoch_breakdown(benchmark, tmp_path):
    """One tiny stage-2 epoch; the per-phase wall-clock split is recorded in the benchmark's extra_info."""
    from rtdmd_bench import config
    from rtdmd_bench.cli.train import resolve_config
    from rtdmd_bench.registry import import_target

    spec, cfg, _ = resolve_config("stage2_rtdmd", "tiny-sd35", None, ["train.console_every=0"], 1)

    def run():
        out = tmp_path / f"run{time.monotonic_ns()}"
        import_target(spec.target)(cfg, config.to_dict(cfg), weights="tiny", out=str(out))
        return json.loads((out / "metrics.jsonl").read_text().splitlines()[0])

    row = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({k: v for k, v in row.items() if k.startswith("time/")})
    print({k: round(v, 3) for k, v in row.items() if k.startswith("time/")})
