"""``score_images()``: score a folder of images made elsewhere exactly as ``evaluate()`` scores its own.

Flow: suite prompts (checksums verified) and reward names checked -> the folder's images lined up with the prompts
(``eval.image_layouts``; any mismatch is one error before any scorer loads) -> each image hard-linked (or copied)
into the run dir as ``images/<suite>/<prompt_id>_<sample_idx>.<ext>`` with its sha256 -> batches scored by the
shared ``eval.scoring`` functions -> one fsynced journal line per image -> ``samples.jsonl`` and ``results.json``
with the same aggregation, CIs and schema as ``eval`` (``model.origin`` = ``external images``, ``seed`` null).

Resume: a re-run skips every image whose sha256 and rewards are recorded; a changed image is scored again; adding a
reward scores only that reward. The run dir then works with ``compare``, ``check``, ``report`` and ``leaderboard``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from rtdmd_bench.eval.config import SCORE_IDENTITY_FIELDS, ScoreConfig
from rtdmd_bench.eval.image_layouts import FoundImage, ImageFolderError, match_images
from rtdmd_bench.eval.plan import Plan, WorkItem


class RewardPool:
    """Rewards built lazily, once each, on ``device`` (the ``workers`` of ``scoring.score_batch``)."""

    def __init__(self, weights: str | None, device: str, options: dict[str, dict] | None = None):
        self.weights, self.device, self.options, self._built = weights, device, options or {}, {}

    def reward(self, name: str):
        if name not in self._built:
            from rtdmd_bench import rewards
            from rtdmd_bench.hf import quiet_hf

            quiet_hf()
            self._built[name] = rewards.build(name, weights=self.weights, device=self.device,
                                              options=self.options.get(name))
        return self._built[name]


def _image_sizes(found: list[FoundImage]) -> dict[Path, tuple[int, int]]:
    """``(width, height)`` of every image from its header; unreadable files are one error listing them."""
    from PIL import Image

    sizes, bad = {}, []
    for f in found:
        try:
            with Image.open(f.path) as im:
                sizes[f.path] = im.size
        except Exception as exc:  # PIL raises several types for a non-image or a truncated header
            bad.append(f"{f.source} ({type(exc).__name__})")
    if bad:
        raise ImageFolderError(f"{len(bad)} file(s) are not readable images: {'; '.join(bad[:8])}")
    return sizes


def _import(src: Path, dest: Path) -> None:
    """``dest`` holds ``src``'s bytes: a hard link when possible (no extra disk), else an atomic copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def _origin(cfg: ScoreConfig, root: Path, layout: str, found: list[FoundImage], shas: dict[Path, str],
            sizes: dict[Path, tuple[int, int]]) -> dict[str, Any]:
    """results.json ``model`` for external images: what is known of where they came from."""
    import hashlib
    import json

    digest = hashlib.sha256("".join(f"{f.source}\0{shas[f.path]}\n" for f in found).encode()).hexdigest()
    made_by = None
    if (root / "results.json").is_file():  # a harness run dir: its generator is known
        try:
            made_by = json.loads((root / "results.json").read_text()).get("model")
        except (OSError, ValueError):
            made_by = None
    made_by = made_by or {}
    (w, h), uniform = next(iter(sizes.values())), len(set(sizes.values())) == 1
    return {"name": cfg.name or made_by.get("name") or f"external images ({root.name})", "origin": "external images",
            "family": made_by.get("family"), "images_folder": root.name, "layout": layout,
            "mapping": Path(cfg.mapping).name if cfg.mapping else None, "content_sha256": digest,
            "n_images": len(found), "height": h if uniform else None, "width": w if uniform else None,
            "nfe": made_by.get("nfe"), "guidance": made_by.get("guidance"), "lora": [],
            "tiny": bool(made_by.get("tiny")), "generated_by": made_by or None}


def prepare_images(cfg: ScoreConfig):
    """Everything checked before any scorer loads: ``(suite spec, rewards, layout, found images, work items, sizes)``.

    Raises:
        RegistryError / ValueError: unknown suite or reward, unavailable reward, images that do not match the suite.
    """
    from rtdmd_bench.eval.plan import check_rewards
    from rtdmd_bench.suites import load_suite, suite_spec

    spec = suite_spec(cfg.suite)
    rewards = tuple(cfg.rewards) or spec.default_rewards
    check_rewards([(cfg.suite, rewards)], cfg.reward_options)
    if cfg.limit is not None and cfg.limit < 1:
        raise ValueError(f"limit must be >= 1, got {cfg.limit}")
    prompts = load_suite(cfg.suite)
    prompts = prompts[: cfg.limit] if cfg.limit else prompts
    layout, found = match_images(Path(cfg.images), cfg.suite, prompts, cfg.layout,
                                 Path(cfg.mapping) if cfg.mapping else None)
    if cfg.samples_per_prompt:
        found = [f for f in found if f.sample_idx < cfg.samples_per_prompt]
    sizes = _image_sizes(found)
    by_id = {p.prompt_id: p for p in prompts}
    items = [WorkItem(cfg.suite, spec.id, f.prompt_id, f.sample_idx, by_id[f.prompt_id].prompt, None,
                      by_id[f.prompt_id].tag, dict(by_id[f.prompt_id].metadata)) for f in found]
    return spec, rewards, layout, found, items, sizes


def score_images(cfg: ScoreConfig, force: bool = False, progress: bool = False) -> dict[str, Any]:
    """Score (or resume scoring) ``cfg.images`` and return the results.json object."""
    from rtdmd_bench.eval import rundir

    t_start = time.perf_counter()
    spec, rewards, layout, found, items, sizes = prepare_images(cfg)
    out, root = Path(cfg.out), Path(cfg.images)
    lock = rundir.RunLock(out)  # one writer per run folder, as for eval
    lock.acquire()
    try:
        return _score_locked(cfg, spec, rewards, layout, found, items, sizes, out, root, force, t_start)
    finally:
        lock.release()


def _score_locked(cfg: ScoreConfig, spec, rewards, layout, found, items, sizes, out: Path, root: Path, force: bool,
                  t_start: float) -> dict[str, Any]:
    from rtdmd_bench.eval import rundir
    from rtdmd_bench.eval.journal import Journal, load_all, write_samples
    from rtdmd_bench.eval.scoring import reward_entries, sample_record, score_batch
    from rtdmd_bench.imaging import load_images
    from rtdmd_bench.io import atomic_write_json, sha256_file
    from rtdmd_bench.weights import TINY, is_tiny, resolve_root

    existing = rundir.prepare(out, cfg, force, identity=SCORE_IDENTITY_FIELDS)
    journal = Journal(out / "journal" / "rank-0.jsonl")
    shas: dict[Path, str] = {}
    scored_n, t_score = 0, 0.0
    try:
        for f, it in zip(found, items):
            rel = f"images/{it.suite}/{it.prompt_id:05d}_{it.sample_idx:02d}{f.path.suffix.lower()}"
            shas[f.path] = sha = sha256_file(f.path)
            if not ((out / rel).is_file() and sha256_file(out / rel) == sha):
                _import(f.path, out / rel)
            old = existing.get(it.key)
            if old is None or old.get("image_sha256") != sha or old.get("image") != rel:
                base = sample_record(it, None, {}, 0)
                base.update(image=rel, image_sha256=sha, gen_time_s=0.0, source=f.source)
                journal.append(base)
                existing[it.key] = base
        device = _device(cfg.device)
        pool = RewardPool(cfg.weights, device, cfg.reward_options)
        todo = [it for it in items if any(r not in existing[it.key].get("scores", {}) for r in rewards)]
        for i in range(0, len(todo), cfg.batch_size):
            batch = todo[i:i + cfg.batch_size]
            lacking = tuple(r for r in rewards if any(r not in existing[it.key].get("scores", {}) for it in batch))
            t0 = time.perf_counter()
            for group in _same_size(batch, existing, out):
                images = load_images([out / existing[it.key]["image"] for it in group])
                scored = score_batch(pool, lacking, group, images)
                for j, it in enumerate(group):
                    rec = sample_record(it, existing[it.key], scored, j)
                    journal.append(rec)
                    existing[it.key] = rec
                    scored_n += 1
            t_score += time.perf_counter() - t0
    finally:
        journal.close()
    merged = load_all(out)
    write_samples(out, merged)
    model = _origin(cfg, root, layout, found, shas, sizes)
    n_prompts = len({it.prompt_id for it in items})
    plan = Plan(items=items, rewards={cfg.suite: rewards}, suites={cfg.suite: spec}, n_prompts_used={cfg.suite: n_prompts})
    entries, info = reward_entries(plan, merged, cfg.weights, cfg.reward_options, cfg.bootstrap_resamples)
    run = {"world_size": 1, "hardware": rundir.hardware(device), "wall_time_s": time.perf_counter() - t_start,
           "generation_time_s": 0.0, "scoring_time_s": t_score, "images_generated": 0, "images_scored": scored_n,
           "images_total": len(items), "images_per_s": None, "seed": None,
           "bootstrap_resamples": cfg.bootstrap_resamples}
    tiny = cfg.weights == TINY or (bool(cfg.weights) and is_tiny(resolve_root(cfg.weights))) or model["tiny"]
    results = rundir.assemble(cfg, plan, model, entries, run, tiny, info)
    results["suites"][spec.id].update(prompt_ids=f"prompts with images: {n_prompts} of the first "
                                                 f"{cfg.limit or spec.n_prompts or n_prompts}",
                                      images_per_prompt=max(it.sample_idx for it in items) + 1)
    atomic_write_json(out / "results.json", results)
    return results


def _same_size(batch: list[WorkItem], records: dict, out: Path) -> list[list[WorkItem]]:
    """The batch split into groups of equally sized images (a batch tensor needs one size; order kept)."""
    from PIL import Image

    groups: dict[tuple[int, int], list[WorkItem]] = {}
    for it in batch:
        with Image.open(out / records[it.key]["image"]) as im:
            groups.setdefault(im.size, []).append(it)
    return list(groups.values())


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
