"""``evaluate()``: THE generation + scoring path (the ``eval`` command and training's periodic eval call it).

Flow per rank: plan and preflight (every name, weight file and reward x suite pairing validated before anything
is written) -> rank 0 takes the run folder's writer lock, checks/writes config.yaml and compacts stale journals
-> global batches of ``batch_size`` items, batch j on rank ``j % world`` -> skip batches whose PNGs verify and
hold every requested score -> the main thread generates the other batches back to back while
``eval/pipeline.py`` quantises, scores, writes the PNGs (atomically, sha256 recorded) and appends one fsynced
journal line per image in background threads. Rank 0 then merges every journal into a sorted ``samples.jsonl``
and writes results.json.
Every image's noise comes only from its item's seed; with the batch composition fixed by ``batch_size``, any
world size and any interruption yield bit-identical samples. A different ``batch_size`` changes only float
rounding in batched matmuls (~1e-6, so a PNG pixel may differ by 1/255).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rtdmd_bench.eval.config import EvalConfig
from rtdmd_bench.eval.plan import Plan, WorkItem, make_plan
from rtdmd_bench.eval.scoring import sample_record as _record
from rtdmd_bench.eval.scoring import score_batch as _score
from rtdmd_bench.hf import quiet_hf

IMAGES_PER_S_INCLUDES = ("generation, quantisation, scoring, PNG encode + sha256 + write, journal lines "
                         "(the slowest rank, from its first generate call to its last journal line); excludes "
                         "loading the generator and the rewards, planning, resume checks and aggregation")


class Interrupted(Exception):
    """Ctrl-C: the batches in flight were finished and recorded; re-running the command resumes."""


@contextmanager
def _graceful_sigint():
    """First Ctrl-C: finish the batches in flight, then stop cleanly. Second Ctrl-C: stop at once."""
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
    """Lazily built generator and rewards (a finished run resumes without loading any model). Rank 0 writes
    model.json atomically as soon as the generator exists, so no later crash can lose its description."""

    def __init__(self, cfg: EvalConfig, device: str, generator=None, out: Path | None = None):
        self.cfg, self.device, self._generator, self._rewards = cfg, device, generator, {}
        self.out, self.load_s = out, 0.0
        if generator is not None:
            self._describe()

    @property
    def built(self) -> bool:
        return self._generator is not None

    @property
    def generator(self):
        if self._generator is None:
            from rtdmd_bench import models

            t0 = time.perf_counter()
            quiet_hf()
            dtype = _torch_dtype(self.cfg.dtype)
            self._generator = models.build(self.cfg.model, weights=self.cfg.weights, device=self.device,
                                           dtype=dtype, lora=self.cfg.lora, **self.cfg.overrides.as_kwargs())
            self.load_s += time.perf_counter() - t0
            self._describe()
        return self._generator

    def _describe(self) -> None:
        if self.out is not None:
            from rtdmd_bench.io import atomic_write_json

            atomic_write_json(self.out / "model.json", self._generator.describe())

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
    """Rich progress bars for generation and scoring: images/s and an ETA from the average rate since the first
    finished batch (rich's own estimate needs several updates inside a 30 s window, so slow batches showed
    ``-:--:--`` to the end); before the second batch the ETA uses the time since the start. Silent when disabled."""

    def __init__(self, enabled: bool, n_gen: int, n_score: int):
        self.bar = None
        self._marks: dict[int, tuple[float, int]] = {}  # task -> (time, completed) at its first finished batch
        if not enabled or (n_gen == 0 and n_score == 0):
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"))
        self._t0 = time.perf_counter()
        self.gen = self.bar.add_task("generating", total=n_gen, rate="", eta="ETA …")
        self.score = self.bar.add_task("scoring   ", total=n_score, rate="", eta="ETA …")
        self.bar.start()

    def advance(self, task: str, n: int) -> None:
        if self.bar is None:
            return
        tid = self.gen if task == "gen" else self.score
        self.bar.advance(tid, n)
        t = self.bar.tasks[tid]
        now = time.perf_counter()
        first = self._marks.setdefault(tid, (now, int(t.completed)))
        if t.completed > first[1] and now > first[0]:
            rate = (t.completed - first[1]) / (now - first[0])
        else:
            rate = t.completed / max(now - self._t0, 1e-9)
        left = max(float(t.total or 0) - t.completed, 0.0) / rate if rate > 0 else None
        eta = "done" if t.total and t.completed >= t.total else (
            f"ETA {int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}" if left is not None else "ETA …")
        self.bar.update(tid, rate=f"{rate:6.2f} img/s", eta=eta)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _plan_batches(plan: Plan, out: Path, mine: list[list[WorkItem]], existing: dict, verify: bool):
    """Resume planning: ``(todo, refreshed)``. ``todo`` = ``(batch, ok, rewards)`` for every batch with a missing
    image (regenerated whole; only missing images are written) or a reward some verified image lacks (scored
    from the PNGs). An image verifies by its cached size + mtime, or by its sha256 when those changed (or with
    ``verify``); ``refreshed`` = records whose cache fields must be rewritten after a re-hash."""
    from rtdmd_bench.eval.rundir import check_image

    todo, refreshed = [], []
    for batch in mine:
        ok = []
        for it in batch:
            rec = existing.get(it.key)
            good, stat = check_image(out, rec, it.image_rel, verify)
            ok.append(good)
            if stat is not None:
                refreshed.append({**rec, **stat})
        wanted = plan.rewards[batch[0].suite]
        if not all(ok):
            todo.append((batch, ok, wanted))
            continue
        lacking = tuple(r for r in wanted if any(r not in existing[it.key].get("scores", {}) for it in batch))
        if lacking:
            todo.append((batch, ok, lacking))
    return todo, refreshed


def _work(cfg: EvalConfig, plan: Plan, out: Path, mine: list[list[WorkItem]], existing: dict, workers: _Workers,
          journal, progress: bool, stop: dict, verify: bool) -> dict[str, Any]:
    """Generate and/or score this rank's global batches; returns counters and the stage profile."""
    import torch

    from rtdmd_bench.eval.pipeline import Job, Pipeline

    t_plan = time.perf_counter()
    todo, refreshed = _plan_batches(plan, out, mine, existing, verify)
    stats: dict[str, Any] = {"generation_time_s": 0.0, "scoring_time_s": 0.0, "images_generated": 0,
                             "images_scored": 0, "loop_s": 0.0, "resume_check_s": time.perf_counter() - t_plan}

    def make_record(it: WorkItem, i: int, job: Job) -> dict[str, Any] | None:
        old = existing.get(it.key) if job.ok[i] else None
        if old is not None and all(r in old.get("scores", {}) for r in job.scored):
            return None
        return _record(it, old, job.scored, i)

    def on_batch(job: Job) -> None:
        bars.advance("gen", len(job.writes))
        bars.advance("score", len(job.items))

    if not todo and not refreshed:
        journal.close()
        return stats
    try:
        # The rewards are loaded here, not lazily in the scorer thread, and the generator in this thread too (at
        # the first generating batch): two threads importing transformers/diffusers at once can deadlock or see
        # half-initialised modules.
        for name in dict.fromkeys(r for _, _, rs in todo for r in rs):
            workers.reward(name)
    except BaseException:
        journal.close()
        raise
    bars = _Progress(progress, sum(len(b) - sum(ok) for b, ok, _ in todo), sum(len(b) for b, _, _ in todo))
    pipe = Pipeline(out, journal, lambda names, items, images: _score(workers, names, items, images), make_record,
                    device=workers.device, io_threads=_io_threads(cfg),
                    on_batch=on_batch)
    t_loop = None
    try:
        if refreshed:
            pipe.submit(Job(records=refreshed))
        for batch, ok, rewards in todo:
            if stop["stop"]:
                raise Interrupted
            if all(ok):
                pipe.submit(Job(items=batch, ok=ok, rewards=rewards))
                continue
            gen = workers.generator  # built outside the timed loop (model.json written now)
            t0 = time.perf_counter()
            t_loop = t_loop or t0
            with torch.inference_mode():
                images = gen.generate([it.prompt for it in batch], [it.seed for it in batch])
            stats["generation_time_s"] += time.perf_counter() - t0
            pipe.submit(Job(items=batch, ok=ok, rewards=rewards, images=images, gen_time_s=time.perf_counter() - t0))
        t_drain = time.perf_counter()
        pipe.close()
        pipe.counters.add("drain_s", time.perf_counter() - t_drain)  # the last batches' tail after the generator
    except KeyboardInterrupt:  # second Ctrl-C: stop at once
        pipe.abort()
        raise
    except BaseException as exc:  # first Ctrl-C, or a generator error: finish and journal what was handed over
        try:
            pipe.close()
        except Exception:  # noqa: BLE001  (the original error is the one to report)
            if isinstance(exc, Interrupted):
                raise
        raise
    finally:
        bars.stop()
        stats.update(_pipeline_stats(pipe, t_loop, workers))
    return stats


def _pipeline_stats(pipe, t_loop: float | None, workers: _Workers) -> dict[str, Any]:
    profile = dict(pipe.counters.values)
    return {"images_generated": pipe.images_written, "images_scored": pipe.records_written,
            "scoring_time_s": profile.get("score_s", 0.0),
            "loop_s": time.perf_counter() - t_loop if t_loop else 0.0,
            "model_load_s": workers.load_s, "profile_s": {k: round(v, 4) for k, v in sorted(profile.items())}}


def _io_threads(cfg: EvalConfig) -> int:
    """PNG encode/write threads: ``cfg.io_threads``, else one per core beyond the generator's, 2 to 8."""
    if cfg.io_threads:
        return cfg.io_threads
    return max(2, min(8, (os.cpu_count() or 2) - 1))


def evaluate(cfg: EvalConfig, generator=None, force: bool = False, progress: bool = False,
             verify_images: bool = False) -> dict[str, Any] | None:
    """Run (or resume) an evaluation and return the results.json object (None on non-zero ranks).

    Args:
        cfg: the run configuration (``cfg.out`` is the run directory).
        generator: an already-built generator (training's periodic eval); built from ``cfg.model`` if None.
        force: reuse an output dir that holds a run with different identity fields.
        progress: show rich progress bars.
        verify_images: re-hash every cached PNG (default: trust a PNG whose size and mtime match its record).

    Raises:
        Interrupted: after Ctrl-C, once the batches in flight are recorded.
        RunDirError: the run folder is held by another writer, unwritable, or holds a different run.
    """
    from rtdmd_bench.eval import distributed, rundir
    from rtdmd_bench.eval.journal import Journal, load_all
    from rtdmd_bench.eval.plan import preflight
    from rtdmd_bench.weights import TINY, is_tiny, resolve_root

    t_start = time.perf_counter()
    plan = make_plan(cfg)  # every name and checksum validated before any model loads
    if generator is None:
        preflight(cfg)  # model, weight files, LoRAs: still nothing written
    rank, world = distributed.rank_world()
    out = Path(cfg.out)
    lock = rundir.RunLock(out) if rank == 0 else None  # one writer per folder; a torchrun job holds it once
    if lock is not None:
        lock.acquire()
    try:
        existing = rundir.prepare(out, cfg, force) if rank == 0 else None
        dist = distributed.setup(cfg.device)
        distributed.barrier(dist)  # other ranks start once rank 0 holds the folder and compacted the journals
        if existing is None:
            existing = load_all(out)
        device = str(dist.device)
        workers = _Workers(cfg, device, generator, out if rank == 0 else None)
        journal = Journal(out / "journal" / f"rank-{rank}.jsonl")
        with _graceful_sigint() as stop:
            mine = global_batches(plan, cfg.batch_size)[rank::world]
            stats = _work(cfg, plan, out, mine, existing, workers, journal, progress and rank == 0, stop,
                          verify_images)
        distributed.write_rank_stats(out, rank, stats)
        distributed.barrier(dist)
        try:
            if rank != 0:
                return None
            from rtdmd_bench.eval.finalize import finalize

            return finalize(cfg, plan, out, existing, world, stats_total=distributed.collect_rank_stats(out, world),
                            wall=time.perf_counter() - t_start, device=device, workers=workers,
                            tiny=cfg.weights == TINY or (bool(cfg.weights) and is_tiny(resolve_root(cfg.weights))))
        finally:
            if generator is None:  # a caller that passed its generator (training) owns the process group
                distributed.teardown(dist)
    finally:
        if lock is not None:
            lock.release()
