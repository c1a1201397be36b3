"""``evaluate()``: THE generation + scoring path (the ``eval`` command and training's periodic eval call it).

Flow per rank: plan (validated before any model loads) -> global batches of ``batch_size`` items, batch j on
rank ``j % world`` -> skip batches whose PNGs verify and hold every requested score -> regenerate batches
with a missing image
(PNG written atomically, sha256 recorded) -> score with each reward in batches -> append one fsynced journal
line per image. Rank 0 then merges every journal into a sorted ``samples.jsonl`` and writes results.json.
Every image's noise comes only from its item's seed; with the batch composition fixed by ``batch_size``, any
world size and any interruption yield bit-identical samples. A different ``batch_size`` changes only float
rounding in batched matmuls (~1e-6, so a PNG pixel may differ by 1/255).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rtdmd_bench.eval.config import EvalConfig
from rtdmd_bench.eval.plan import Plan, WorkItem, make_plan
from rtdmd_bench.hf import quiet_hf


class Interrupted(Exception):
    """Ctrl-C: the batch in flight was finished and recorded; re-running the command resumes."""


@contextmanager
def _graceful_sigint():
    """First Ctrl-C: finish the current batch, then stop cleanly. Second Ctrl-C: stop at once."""
    state = {"stop": False}

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (e.g. called from a worker): no handler
        yield state
        return
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


class _Workers:
    """Lazily built generator and rewards (a finished run resumes without loading any model)."""

    def __init__(self, cfg: EvalConfig, device: str, generator=None):
        self.cfg, self.device, self._generator, self._rewards = cfg, device, generator, {}

    @property
    def generator(self):
        if self._generator is None:
            from rtdmd_bench import models

            quiet_hf()
            dtype = _torch_dtype(self.cfg.dtype)
            self._generator = models.build(self.cfg.model, weights=self.cfg.weights, device=self.device,
                                           dtype=dtype, lora=self.cfg.lora, **self.cfg.overrides.as_kwargs())
        return self._generator

    def reward(self, name: str):
        if name not in self._rewards:
            from rtdmd_bench import rewards

            quiet_hf()
            self._rewards[name] = rewards.build(name, weights=self.cfg.weights, device=self.device,
                                                options=self.cfg.reward_options.get(name))
        return self._rewards[name]


def _torch_dtype(name: str | None):
    import torch

    if name is None:
        return None
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} (use float32, bfloat16 or float16)")
    return dtype


def _score(workers: _Workers, names: tuple[str, ...], items: list[WorkItem], images) -> dict[str, Any]:
    """Scores of a batch for each reward: {reward: (scores list, valid list, parts, extras)}."""
    import math

    import torch

    out = {}
    prompts = [it.prompt for it in items]
    meta = [it.metadata for it in items]
    for name in names:
        reward = workers.reward(name)
        with torch.inference_mode():
            res = reward(images.to(workers.device), prompts, meta)
        scores = [float(s) for s in res.scores.float().cpu()]
        valid = [bool(v) and math.isfinite(s) for v, s in zip(res.valid.cpu().tolist(), scores)]
        parts = {k: [float(x) if math.isfinite(float(x)) else None for x in v.float().cpu()]
                 for k, v in res.parts.items()}
        out[name] = (scores, valid, parts, res.extras)
    return out


def _record(item: WorkItem, base: dict[str, Any] | None, scored: dict[str, Any], i: int) -> dict[str, Any]:
    rec = dict(base) if base else {}
    rec.update(suite=item.suite, suite_version=item.suite_id.split("@", 1)[1], prompt_id=item.prompt_id,
               sample_idx=item.sample_idx, prompt=item.prompt, seed=item.seed, tag=item.tag)
    for field in ("scores", "valid", "parts", "extras"):
        rec[field] = dict(rec.get(field, {}))
    for name, (scores, valid, parts, extras) in scored.items():
        rec["scores"][name] = scores[i] if valid[i] else None
        rec["valid"][name] = valid[i]
        rec["parts"][name] = {k: v[i] for k, v in parts.items()}
        rec["extras"][name] = {k: v[i] for k, v in extras.items()}
    return rec


def global_batches(plan: Plan, size: int) -> list[list[WorkItem]]:
    """Items of each suite chunked by ``size`` in canonical order. A global batch is the unit of work on
    every rank and on every resume, so its composition (hence every float, hence every PNG) never depends on
    the world size or on where a previous run stopped."""
    out: list[list[WorkItem]] = []
    for suite in plan.suites:
        items = [it for it in plan.items if it.suite == suite]
        out += [items[i:i + size] for i in range(0, len(items), size)]
    return out


class _Progress:
    """Rich progress bars for generation and scoring (images/s and ETA); silent when disabled."""

    def __init__(self, enabled: bool, n_gen: int, n_score: int):
        self.bar = None
        if not enabled or (n_gen == 0 and n_score == 0):
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        speed = TextColumn("{task.fields[rate]}")
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), speed,
                            TimeRemainingColumn())
        self.gen = self.bar.add_task("generating", total=n_gen, rate="")
        self.score = self.bar.add_task("scoring   ", total=n_score, rate="")
        self.bar.start()

    def advance(self, task: str, n: int) -> None:
        if self.bar is not None:
            tid = self.gen if task == "gen" else self.score
            self.bar.advance(tid, n)
            speed = self.bar.tasks[tid].speed
            self.bar.update(tid, rate=f"{speed:6.2f} img/s" if speed else "")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _pending(plan: Plan, out: Path, batch: list[WorkItem], existing: dict) -> tuple[list[bool], tuple[str, ...]]:
    """Which images of the batch verify, and which rewards some verified image still lacks."""
    from rtdmd_bench.eval.rundir import image_ok

    ok = [image_ok(out, existing.get(it.key)) for it in batch]
    lacking = tuple(r for r in plan.rewards[batch[0].suite]
                    if any(o and r not in existing[it.key].get("scores", {}) for it, o in zip(batch, ok)))
    return ok, lacking


def _work(cfg, plan: Plan, out: Path, mine: list[list[WorkItem]], existing: dict, workers: _Workers,
          journal, progress: bool, stop: dict) -> dict[str, float]:
    """Generate and/or score this rank's global batches; returns timing counters.

    A batch with any missing or corrupt image is regenerated whole (only the missing images are written);
    a batch whose images all verify is only scored, for the rewards some image lacks.
    """
    import torch

    from rtdmd_bench.imaging import load_images, png_bytes, to_uint8
    from rtdmd_bench.io import atomic_write_bytes, sha256_bytes

    todo = [(b, *_pending(plan, out, b, existing)) for b in mine]
    todo = [(b, ok, lacking) for b, ok, lacking in todo if not all(ok) or lacking]
    n_gen = sum(len(b) for b, ok, _ in todo if not all(ok))
    stats = {"generation_time_s": 0.0, "scoring_time_s": 0.0, "images_generated": 0, "images_scored": 0}
    bars = _Progress(progress, n_gen, sum(len(b) for b, _, _ in todo))
    try:
        for batch, ok, lacking in todo:
            if stop["stop"]:
                raise Interrupted
            generate = not all(ok)
            if generate:
                workers.generator  # noqa: B018  (load outside the timed region)
            t0 = time.perf_counter()
            if generate:
                with torch.inference_mode():
                    images = workers.generator.generate([it.prompt for it in batch], [it.seed for it in batch])
                pixels = to_uint8(images)
                images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
                blobs = [png_bytes(p) for p in pixels]
                for it, good, blob in zip(batch, ok, blobs):
                    if not good:
                        atomic_write_bytes(out / it.image_rel, blob)
                t1 = time.perf_counter()
                stats["generation_time_s"] += t1 - t0
                stats["images_generated"] += len(batch) - sum(ok)
                bars.advance("gen", len(batch))
            else:
                images = load_images([out / existing[it.key]["image"] for it in batch])
                t1 = time.perf_counter()
            scored = _score(workers, plan.rewards[batch[0].suite] if generate else lacking, batch, images)
            stats["scoring_time_s"] += time.perf_counter() - t1
            for i, (it, good) in enumerate(zip(batch, ok)):
                if good and all(r in existing[it.key].get("scores", {}) for r in scored):
                    continue
                rec = _record(it, existing[it.key] if good else None, scored, i)
                if not good:
                    rec.update(image=it.image_rel, image_sha256=sha256_bytes(blobs[i]),
                               gen_time_s=(t1 - t0) / len(batch))
                journal.append(rec)
                stats["images_scored"] += 1
            bars.advance("score", len(batch))
    finally:
        bars.stop()
    return stats


def evaluate(cfg: EvalConfig, generator=None, force: bool = False, progress: bool = False) -> dict[str, Any] | None:
    """Run (or resume) an evaluation and return the results.json object (None on non-zero ranks).

    Args:
        cfg: the run configuration (``cfg.out`` is the run directory).
        generator: an already-built generator (training's periodic eval); built from ``cfg.model`` if None.
        force: reuse an output dir that holds a run with different identity fields.
        progress: show rich progress bars.

    Raises:
        Interrupted: after Ctrl-C, once the batch in flight is recorded.
    """
    from rtdmd_bench.eval import distributed, rundir
    from rtdmd_bench.eval.journal import Journal, load_all
    from rtdmd_bench.weights import TINY, is_tiny, resolve_root

    t_start = time.perf_counter()
    plan = make_plan(cfg)  # every name and checksum validated before any model loads
    rank, world = distributed.rank_world()
    out = Path(cfg.out)
    rundir.prepare(out, cfg, force, is_main=rank == 0)
    dist = distributed.setup(cfg.device)
    device = str(dist.device)
    existing = load_all(out)
    workers = _Workers(cfg, device, generator)
    journal = Journal(out / "journal" / f"rank-{rank}.jsonl")
    try:
        with _graceful_sigint() as stop:
            mine = global_batches(plan, cfg.batch_size)[rank::world]
            stats = _work(cfg, plan, out, mine, existing, workers, journal, progress and rank == 0, stop)
    finally:
        journal.close()
    distributed.write_rank_stats(out, rank, stats)
    if workers._generator is not None and rank == 0:
        from rtdmd_bench.io import atomic_write_json

        atomic_write_json(out / "model.json", workers.generator.describe())
    distributed.barrier(dist)
    try:
        if rank != 0:
            return None
        return _finalize(cfg, plan, out, world, stats_total=distributed.collect_rank_stats(out, world),
                         wall=time.perf_counter() - t_start, device=device,
                         tiny=cfg.weights == TINY or (bool(cfg.weights) and is_tiny(resolve_root(cfg.weights))))
    finally:
        if generator is None:  # a caller that passed its generator (training) owns the process group
            distributed.teardown(dist)


def _finalize(cfg: EvalConfig, plan: Plan, out: Path, world: int, stats_total: dict[str, float], wall: float,
              device: str, tiny: bool) -> dict[str, Any]:
    from rtdmd_bench.eval import rundir
    from rtdmd_bench.eval.aggregate import entry
    from rtdmd_bench.eval.journal import load_all, write_samples
    from rtdmd_bench.io import atomic_write_json
    from rtdmd_bench.rewards import reward_identity, reward_spec

    merged = load_all(out)
    write_samples(out, merged)
    info = {name: reward_identity(name, cfg.weights, cfg.reward_options.get(name))
            for name in dict.fromkeys(n for names in plan.rewards.values() for n in names)}
    entries = {}
    for suite, names in plan.rewards.items():
        recs = [merged[it.key] for it in plan.items if it.suite == suite and it.key in merged]
        for name in names:
            spec = dataclasses.replace(reward_spec(name), version=info[name]["version"], units=info[name]["units"])
            entries[f"{suite}/{name}"] = entry(recs, plan.suites[suite], name, spec, cfg.bootstrap_resamples)
    model_path = out / "model.json"
    model_info = json.loads(model_path.read_text()) if model_path.is_file() else {"name": cfg.model}
    n_gen = int(stats_total.get("images_generated", 0))
    run = {"world_size": world, "hardware": rundir.hardware(device), "wall_time_s": wall,
           **stats_total, "images_total": len(plan.items),
           "images_per_s": n_gen / stats_total["max_generation_time_s"] if stats_total.get("max_generation_time_s") else None,
           "seed": cfg.seed, "bootstrap_resamples": cfg.bootstrap_resamples}
    results = rundir.assemble(cfg, plan, model_info, entries, run, tiny or bool(model_info.get("tiny")), info)
    atomic_write_json(out / "results.json", results)
    return results
