"""The harness's own per-image work, kept off the generator's critical path.

The main thread only generates: it hands batch j over and starts ``generate(batch j+1)`` at once. Behind it::

    main thread --(at most ``depth`` batches in flight)--> scorer thread --(batch order)--> journal thread
                                                           | quantise on the device, copy uint8 to the host
                                                           | hand PNG encode + sha256 + atomic write
                                                           |   to the I/O pool (``io_threads`` threads)
                                                           | score with every reward (on its own CUDA stream)
                                                                          journal thread: waits for the batch's
                                                                          PNGs, appends one fsynced line per image

Every guarantee of the serial loop holds: a journal line is written only after its PNG is complete under its
final name (fsync, then atomic rename) and its scores exist, so a crash at any point leaves only complete,
journaled images (at most the complete but unjournaled PNGs of the batches in flight, which a resume regenerates
bit-identically); pixels, PNG bytes and scores are computed from the same tensors in the same order as before,
one batch at a time, so they do not depend on the threads. Back-pressure: ``submit`` blocks while ``depth``
batches are in flight (memory stays bounded; a slow scorer or disk slows generation instead of queueing
without limit). ``close()`` drains everything submitted (end of the run, first Ctrl-C); ``abort()`` (second
Ctrl-C) drops what has not started. The first error of any thread is re-raised in the main thread by the next
``submit`` or by ``close``; batches finished before it are still journaled.

Pillow releases the GIL while compressing, hashlib while hashing and torch inside its kernels, so on a CPU box
the threads really run in parallel; on a GPU the scorers' kernels go to a side stream that waits for the
generator's event, so scoring batch j overlaps generating batch j+1 where the device has room.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DEPTH = 2  # batches in flight behind the generator: one being scored, one being written
HEAP_MMAP_THRESHOLD = 256 << 20  # host allocations up to this size come from the reusable heap
HEAP_TRIM_THRESHOLD = 1 << 30  # freed host memory kept for reuse before it is returned to the OS


def reuse_freed_host_memory() -> bool:
    """Let glibc keep and reuse freed large host blocks (idempotent; False where mallopt is unavailable).

    glibc serves every allocation over 32 MB with a fresh ``mmap`` and unmaps it on free, so each float
    ``[4,3,1024,1024]`` temporary (50 MB) costs ~12k page faults: measured 3-4x the arithmetic of the scorers'
    preprocessing on CPU (a saturation forward 300 ms -> 80 ms). The price: up to ``HEAP_TRIM_THRESHOLD`` of
    freed memory stays in the process.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, HEAP_MMAP_THRESHOLD)) and bool(
            libc.mallopt(m_trim_threshold, HEAP_TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False


@dataclass
class Job:
    """One global batch handed to the pipeline.

    Attributes:
        items: the batch's work items.
        ok: per item, True when its PNG already exists and verifies (it is not rewritten).
        rewards: reward names to compute for the batch.
        images: generated float ``[B,3,H,W]`` on the device, or None to score the cached PNGs.
        gen_time_s: wall time of the ``generate`` call.
        event: CUDA event recorded after generation (None off CUDA).
        records: ready-made journal records (stat refreshes); no images, nothing scored.
    """

    items: list[Any] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    rewards: tuple[str, ...] = ()
    images: Any = None
    gen_time_s: float = 0.0
    event: Any = None
    records: list[dict[str, Any]] | None = None
    # filled by the scorer thread
    writes: dict[int, Future] = field(default_factory=dict)
    scored: dict[str, Any] | None = None
    skipped: bool = False


class Counters:
    """Thread-safe sums of seconds (and counts) per stage: the run's profile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, float] = {}

    def add(self, name: str, value: float) -> None:
        with self._lock:
            self.values[name] = self.values.get(name, 0.0) + value

    def timed(self, name: str) -> _Timer:
        return _Timer(self, name)


class _Timer:
    def __init__(self, counters: Counters, name: str):
        self.counters, self.name = counters, name

    def __enter__(self) -> _Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.counters.add(self.name, time.perf_counter() - self.t0)


def write_png(path: Path, pixels: Any, counters: Counters, level: int) -> tuple[str, int, int]:
    """Encode uint8 ``[H,W,3]`` as PNG, hash it, write it atomically; returns ``(sha256, size, mtime_ns)``."""
    from rtdmd_bench.imaging import png_bytes
    from rtdmd_bench.io import atomic_write_bytes, sha256_bytes

    with counters.timed("png_encode_s"):
        blob = png_bytes(pixels, level)
    with counters.timed("sha256_s"):
        sha = sha256_bytes(blob)
    with counters.timed("png_write_s"):
        atomic_write_bytes(path, blob)
        st = path.stat()
    return sha, st.st_size, st.st_mtime_ns


class Pipeline:
    """Quantise, score, write and journal batches in background threads (see the module docstring).

    Args:
        out: the run directory.
        journal: this rank's ``Journal`` (the journal thread owns it from now on and closes it).
        score: ``score(reward_names, items, images) -> {reward: (scores, valid, parts, extras)}``.
        make_record: ``make_record(item, index, job) -> dict | None`` (None = nothing new to journal).
        device: torch device of the generator and the rewards.
        io_threads: PNG encode/hash/write threads.
        depth: batches in flight behind the generator.
        png_level: zlib level of the PNGs.
        on_batch: progress callback ``on_batch(job)`` once a batch is journaled.
    """

    def __init__(self, out: Path, journal: Any, score: Callable[..., dict[str, Any]],
                 make_record: Callable[[Any, int, Job], dict[str, Any] | None], *, device: Any,
                 io_threads: int = 2, depth: int = DEFAULT_DEPTH, png_level: int | None = None,
                 on_batch: Callable[[Job], None] | None = None):
        from rtdmd_bench.imaging import PNG_COMPRESS_LEVEL

        reuse_freed_host_memory()
        self.out, self.journal, self.score, self.make_record = Path(out), journal, score, make_record
        self.device, self.depth = device, max(1, depth)
        self.png_level = PNG_COMPRESS_LEVEL if png_level is None else png_level
        self.on_batch = on_batch or (lambda job: None)
        self.counters = Counters()
        self.images_written = self.records_written = 0
        self._pool = ThreadPoolExecutor(max_workers=max(1, io_threads), thread_name_prefix="rtdmd-png")
        self._to_score: queue.Queue = queue.Queue()
        self._to_journal: queue.Queue = queue.Queue()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._error: BaseException | None = None
        self._aborted = threading.Event()
        self._scorer = threading.Thread(target=self._run_scorer, name="rtdmd-scorer", daemon=True)
        self._journaler = threading.Thread(target=self._run_journal, name="rtdmd-journal", daemon=True)
        self._scorer.start()
        self._journaler.start()

    # ------------------------------------------------------------------------------------------ main thread
    def submit(self, job: Job) -> None:
        """Hand a batch over; blocks while ``depth`` batches are in flight. Raises the first worker error."""
        if job.images is not None and getattr(job.images, "is_cuda", False):  # a CPU tensor needs no stream sync
            import torch

            job.event = torch.cuda.Event()
            job.event.record()
        t0 = time.perf_counter()
        with self._cond:
            while self._in_flight >= self.depth and self._error is None:
                self._cond.wait()
            self._raise_error()
            self._in_flight += 1
        self.counters.add("stall_s", time.perf_counter() - t0)
        self._to_score.put(job)

    def close(self) -> None:
        """Drain: finish, write and journal every submitted batch; then raise the first worker error, if any."""
        self._to_score.put(None)
        self._scorer.join()
        self._journaler.join()
        self._pool.shutdown(wait=True)
        self._raise_error()

    def abort(self) -> None:
        """Stop at once: batches not yet started are dropped (their PNGs, if any, are complete files without a
        journal line, regenerated identically by a resume). Threads finish the single step they are in."""
        self._aborted.set()
        self._to_score.put(None)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------------ scorer thread
    def _device_context(self, job: Job) -> Any:
        import torch

        if job.event is None:
            return nullcontext()
        if not hasattr(self, "_stream"):
            torch.cuda.set_device(job.images.device)
            self._stream = torch.cuda.Stream(job.images.device)
        self._stream.wait_event(job.event)  # the generator's kernels for this batch are done first
        job.images.record_stream(self._stream)  # its memory is not reused before the scorers are done
        return torch.cuda.stream(self._stream)

    def _run_scorer(self) -> None:
        while True:
            job = self._to_score.get()
            if job is None or self._aborted.is_set():
                self._to_journal.put(None)
                return
            if self._error is not None:
                job.skipped = True
            else:
                try:
                    self._process(job)
                except BaseException as exc:  # noqa: BLE001
                    job.skipped = True
                    self._fail(exc)
            job.images = None  # free the batch's device memory as early as possible
            self._to_journal.put(job)

    def _process(self, job: Job) -> None:
        from rtdmd_bench.imaging import pixels_to_float, quantize_batch, read_pixels

        if job.records is not None:
            return
        with self._device_context(job):
            if job.images is not None:
                with self.counters.timed("quantize_s"):
                    images, pixels = quantize_batch(job.images)
                for i, (it, good) in enumerate(zip(job.items, job.ok)):
                    if not good:
                        job.writes[i] = self._pool.submit(write_png, self.out / it.image_rel, pixels[i],
                                                          self.counters, self.png_level)
            else:
                with self.counters.timed("load_cached_s"):
                    paths = [self.out / it.image_rel for it in job.items]
                    images = pixels_to_float(list(self._pool.map(read_pixels, paths))).to(self.device)
            with self.counters.timed("score_s"):
                job.scored = self.score(job.rewards, job.items, images)

    # ------------------------------------------------------------------------------------------ journal thread
    def _run_journal(self) -> None:
        try:
            while True:
                job = self._to_journal.get()
                if job is None:
                    return
                try:
                    if not (job.skipped or self._aborted.is_set()):
                        self._journal_job(job)
                except BaseException as exc:  # noqa: BLE001
                    self._fail(exc)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()
        finally:
            self.journal.close()

    def _journal_job(self, job: Job) -> None:
        if job.records is not None:
            for rec in job.records:
                self.journal.append(rec)
            return
        written = {i: f.result() for i, f in job.writes.items()}  # raises a write error (ENOSPC...) here
        with self.counters.timed("journal_s"):
            for i, it in enumerate(job.items):
                rec = self.make_record(it, i, job)
                if rec is None:
                    continue
                if i in written:
                    sha, size, mtime_ns = written[i]
                    rec.update(image=it.image_rel, image_sha256=sha, image_size=size, image_mtime_ns=mtime_ns,
                               gen_time_s=job.gen_time_s / len(job.items))
                self.journal.append(rec)
                self.records_written += 1
        self.images_written += len(written)
        self.on_batch(job)
