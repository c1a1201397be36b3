"""PNG encoding, the quantisation shared by fresh and cached images, and the background pipeline's contract."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from rtdmd_bench.eval.journal import Journal, read_jsonl
from rtdmd_bench.eval.pipeline import Job, Pipeline
from rtdmd_bench.eval.plan import WorkItem
from rtdmd_bench.imaging import load_images, png_bytes, quantize_batch, read_pixels


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 2, 3), (7, 5, 3), (33, 64, 3)])
def test_png_roundtrip_is_lossless_and_deterministic(shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    blob = png_bytes(pixels)
    with Image.open(io.BytesIO(blob)) as img:
        img.load()
        assert img.mode == "RGB" and np.array_equal(np.asarray(img), pixels)
    assert png_bytes(pixels.copy()) == blob
    assert len(png_bytes(pixels, 0)) >= pixels.size + shape[0]  # level 0: stored (pixels + a filter byte per row)


def test_fresh_and_cached_images_give_the_scorers_the_same_tensor(tmp_path):
    x = torch.rand(3, 3, 17, 20)
    x[0, 0, 0, :3] = torch.tensor([-0.2, 1.3, 0.5 / 255])  # out of range and a rounding tie
    scored, pixels = quantize_batch(x)
    assert torch.equal(x, x.clone()) and scored.is_contiguous() and scored.dtype == torch.float32
    assert torch.equal(scored, torch.round(x.clamp(0, 1) * 255) / 255)
    paths = []
    for i, p in enumerate(pixels):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(png_bytes(p))
    assert np.array_equal(read_pixels(paths[0]), pixels[0])
    cached = load_images(paths)
    assert torch.equal(cached, scored) and cached.stride() == scored.stride()


def _items(n: int) -> list[WorkItem]:
    return [WorkItem("s", "s@1", i, 0, f"p{i}", i, None, {}) for i in range(n)]


def _record(it, i, job):
    return {"suite": it.suite, "prompt_id": it.prompt_id, "sample_idx": 0, "scores": {"r": job.scored["r"][i]}}


def test_back_pressure_bounds_the_batches_in_flight_and_close_drains(tmp_path):
    release = threading.Event()
    scored_batches = []

    def score(names, items, images):
        release.wait(10)
        scored_batches.append([it.prompt_id for it in items])
        return {"r": [float(images[i].mean()) for i in range(len(items))]}

    pipe = Pipeline(tmp_path, Journal(tmp_path / "journal" / "rank-0.jsonl"), score, _record, device="cpu",
                    io_threads=2, depth=2)
    items = _items(6)
    done = []

    def producer():
        for b in range(3):
            batch = items[2 * b:2 * b + 2]
            pipe.submit(Job(items=batch, ok=[False, False], rewards=("r",), images=torch.rand(2, 3, 8, 8)))
            done.append(b)

    t = threading.Thread(target=producer)
    t.start()
    time.sleep(0.3)
    assert done == [0, 1]  # the third batch waits: two are in flight
    release.set()
    t.join(10)
    pipe.close()
    assert done == [0, 1, 2] and scored_batches == [[0, 1], [2, 3], [4, 5]]
    lines = list(read_jsonl(tmp_path / "journal" / "rank-0.jsonl"))
    assert [r["prompt_id"] for r in lines] == list(range(6))
    assert all((tmp_path / r["image"]).is_file() and r["image_size"] > 0 for r in lines)
    assert pipe.counters.values["stall_s"] > 0.2 and pipe.images_written == 6


def test_abort_drops_what_has_not_started(tmp_path):
    started = threading.Event()

    def score(names, items, images):
        started.set()
        time.sleep(0.3)
        return {"r": [0.0] * len(items)}

    path = tmp_path / "journal" / "rank-0.jsonl"
    pipe = Pipeline(tmp_path, Journal(path), score, _record, device="cpu", io_threads=1, depth=3)
    items = _items(6)
    for b in range(3):
        pipe.submit(Job(items=items[2 * b:2 * b + 2], ok=[False, False], rewards=("r",),
                        images=torch.rand(2, 3, 8, 8)))
    started.wait(10)
    pipe.abort()
    pipe._journaler.join(10)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) <= 2  # at most the batch being scored; never a line without its complete PNG
    assert all((tmp_path / r["image"]).is_file() for r in lines)
